// Where events go: JSON lines (the log tests and tools read) or the paper's text
// lines, to stdout or a file. Files are opened for append so a restart loses nothing.
import { closeSync, openSync, write as fsWrite } from 'node:fs';
import { dirname } from 'node:path';
import { renderJson, renderText, type VigilEvent } from '../events/index.js';
import { ensureDirectory } from './atomic-file.js';

export type OutputFormat = 'jsonl' | 'text';
/** path '-' is stdout; insecureOnly: the output carries only INSECURE events (alerts). */
export interface OutputSpec { format: OutputFormat; path: string; insecureOnly?: boolean }

export interface EventOutput {
  write(e: VigilEvent): void;
  /** Lines that could not be written (a full disk): counted, and told in a `lost` entry once writing works again. */
  readonly lost: number;
  /** Resolves when the output has flushed what it buffered (at once when it has not backed up). */
  drained(): Promise<void> | undefined;
  /** Starts a new file at the same path (after log rotation moved the old one); stdout: nothing to do. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export class OutputSpecError extends Error {
  readonly code = 'VIGIL_BAD_OUTPUT';
}

/** Parses FORMAT:PATH, e.g. jsonl:/var/log/vigil/events.jsonl or text:- */
export function parseOutputSpec(spec: string, where: string, insecureOnly = false): OutputSpec {
  const i = spec.indexOf(':');
  const format = i < 0 ? spec : spec.slice(0, i);
  const path = i < 0 ? '-' : spec.slice(i + 1);
  if (format !== 'jsonl' && format !== 'text') {
    throw new OutputSpecError(`${where}: output '${spec}' has unknown format '${format}'; use jsonl:PATH or text:PATH (PATH '-' is stdout)`);
  }
  if (path === '') throw new OutputSpecError(`${where}: output '${spec}' has an empty path; use '-' for stdout`);
  return insecureOnly ? { format, path, insecureOnly } : { format, path };
}

/** What an output needs to tell of lines it could not write: the `lost` entry it writes once it can again. */
export interface OutputOptions {
  lostEvent?: (lines: number, reason: string) => VigilEvent;
}

/** While a file cannot be written, lines wait in memory up to this many bytes; beyond it they are counted and dropped. */
const MAX_WAITING_BYTES = 16 << 20;
/** A batch larger than this holds the pipeline (backpressure) until it is written. */
const HIGH_WATER = 1 << 20;
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 2000;
/** How long close() keeps trying a file that cannot be written before it gives the rest up (counted). */
const CLOSE_GRACE_MS = 5000;

/** A place in the queue where lines were dropped: written as one `lost` entry when reached. */
interface LostMark { lost: number; reason: string }

/**
 * Appends to one open file descriptor. A write that fails (ENOSPC, EDQUOT, EIO) is
 * retried with backoff, never given up: a full disk must not stop the log for good. The
 * lines meanwhile wait, up to MAX_WAITING_BYTES; past that they are dropped and counted,
 * and a `lost` entry saying how many and why takes their place in the file once writing
 * works again. A short write keeps its remainder at the head, so no line is torn.
 */
class FileWriter {
  private readonly queue: Array<Buffer | LostMark> = [];
  private waitingBytes = 0;
  private writing = false;
  private retryMs = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private failure: string | undefined;
  private idle: Array<() => void> = [];
  private drains: Array<() => void> = [];
  lost = 0;
  closed = false;
  /** Set while the file this one replaces (reopen) still writes what it had: lines stay in order. */
  held = false;

  constructor(
    readonly fd: number,
    private readonly where: string,
    private readonly onError: (message: string) => void,
    private readonly lostEvent: ((lines: number, reason: string) => string) | undefined,
  ) {}

  get failing(): boolean {
    return this.failure !== undefined;
  }

  get backedUp(): boolean {
    return this.waitingBytes >= HIGH_WATER;
  }

  write(chunk: string, lines: number): void {
    const buf = Buffer.from(chunk, 'utf8');
    if (this.failure !== undefined && this.waitingBytes + buf.length > MAX_WAITING_BYTES) {
      this.dropped(lines, this.failure);
      return;
    }
    this.queue.push(buf);
    this.waitingBytes += buf.length;
    this.pump();
  }

  private dropped(lines: number, reason: string): void {
    this.lost += lines;
    const tail = this.queue[this.queue.length - 1];
    if (tail !== undefined && !Buffer.isBuffer(tail) && tail.reason === reason) tail.lost += lines;
    else this.queue.push({ lost: lines, reason });
  }

  /** The replaced file is done: this one starts writing. */
  release(): void {
    this.held = false;
    this.pump();
  }

  private pump(): void {
    if (this.writing || this.retryTimer || this.closed || this.held) return;
    let head = this.queue[0];
    while (head !== undefined && !Buffer.isBuffer(head)) {
      // The place where lines were dropped: an entry saying so goes there.
      const text = this.lostEvent?.(head.lost, head.reason);
      if (text === undefined) {
        this.queue.shift();
      } else {
        const buf = Buffer.from(text + '\n', 'utf8');
        this.queue[0] = buf;
        this.waitingBytes += buf.length;
      }
      head = this.queue[0];
    }
    if (head === undefined) {
      for (const f of this.idle.splice(0)) f();
      for (const f of this.drains.splice(0)) f();
      return;
    }
    this.writing = true;
    const buf = head;
    fsWrite(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.writing = false;
      if (err) {
        const reason = err.code ?? err.message;
        if (this.failure === undefined) {
          this.onError(`cannot write ${this.where}: ${err.message}; retrying, lines wait in memory (up to ${MAX_WAITING_BYTES >> 20} MiB) and then are counted as lost`);
        }
        this.failure = reason;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.pump();
        }, this.retryMs);
        this.retryTimer.unref();
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        return;
      }
      if (this.failure !== undefined) {
        this.onError(`${this.where} is written again${this.lost > 0 ? ` (${this.lost} lines lost meanwhile: ${this.failure})` : ''}`);
        this.failure = undefined;
        this.retryMs = RETRY_FIRST_MS;
      }
      this.waitingBytes -= n;
      if (n < buf.length) this.queue[0] = buf.subarray(n);
      else this.queue.shift();
      if (this.waitingBytes < HIGH_WATER) for (const f of this.drains.splice(0)) f();
      this.pump();
    });
  }

  /** Resolves when the queue is below the high-water mark; undefined when it already is, or while failing (never held). */
  drained(): Promise<void> | undefined {
    if (!this.backedUp || this.failing) return undefined;
    return new Promise((resolve) => this.drains.push(resolve));
  }

  /** Writes what waits (trying a failing file for a while), then closes the fd; what could not be written is counted. */
  async end(): Promise<void> {
    if (this.held) this.release();
    const done = new Promise<void>((resolve) => {
      if (this.queue.length === 0 && !this.writing) resolve();
      else this.idle.push(resolve);
    });
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS).unref());
    // A file that writes finishes however long it takes; one failing gets the grace period.
    if ((await Promise.race([done.then(() => 'done' as const), timer])) === 'timeout' && !this.failing) await done;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    let left = 0;
    for (const item of this.queue) {
      if (Buffer.isBuffer(item)) left += countLines(item);
    }
    if (left > 0) {
      this.lost += left;
      this.onError(`cannot write ${this.where} at close (${this.failure ?? 'still busy'}): ${left} lines lost`);
    }
    this.queue.length = 0;
    for (const f of this.drains.splice(0)) f();
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
  }
}

function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** onError hears of write failures (a full disk, a removed directory): they are logged, never a crash. */
export function openOutput(spec: OutputSpec, onError: (message: string) => void = () => undefined, opts: OutputOptions = {}): EventOutput {
  const render = spec.format === 'jsonl' ? renderJson : renderText;
  const where = `${spec.format} output ${spec.path === '-' ? 'stdout' : spec.path}`;
  const lostText = opts.lostEvent ? (n: number, reason: string) => render((opts.lostEvent as NonNullable<OutputOptions['lostEvent']>)(n, reason)) : undefined;
  // One line per failure: a full disk must not flood the log with one line per event.
  let failing = false;
  const reportError = (e: Error) => {
    if (failing) return;
    failing = true;
    onError(`cannot write ${where}: ${e.message}`);
  };
  const openFile = (path: string): FileWriter => {
    try {
      ensureDirectory(dirname(path));
    } catch (e) {
      throw new OutputSpecError(`${spec.format} output ${path}: ${(e as Error).message}`);
    }
    // Opened here, synchronously, so a path that cannot be written fails at start with its reason.
    let fd: number;
    try {
      fd = openSync(path, 'a', 0o640);
    } catch (e) {
      throw new OutputSpecError(`${spec.format} output ${path}: cannot open it for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return new FileWriter(fd, where, onError, lostText);
  };
  let file: FileWriter | undefined;
  let lostBefore = 0; // lines lost by files replaced at reopen
  if (spec.path === '-') {
    // A closed pipe (the reader went away) is an error to report, not a crash.
    process.stdout.on('error', reportError);
  } else {
    file = openFile(spec.path);
  }
  // Lines are gathered and written as one chunk per event-loop turn (or per 256 KiB):
  // a write per event cost as much as rendering it.
  let pending = '';
  let pendingLines = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const chunk = pending;
    const lines = pendingLines;
    pending = '';
    pendingLines = 0;
    if (file) file.write(chunk, lines);
    else if (!process.stdout.destroyed) process.stdout.write(chunk);
  };
  return {
    get lost() {
      return lostBefore + (file?.lost ?? 0);
    },
    write: (e) => {
      if (spec.insecureOnly && e.verdict.level !== 'INSECURE') return;
      pending += render(e) + '\n';
      pendingLines++;
      if (pending.length >= 256 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    drained: () => {
      flush();
      if (file) return file.drained();
      if (process.stdout.destroyed || !process.stdout.writableNeedDrain) return undefined;
      return new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
    },
    reopen: () => {
      if (!file) return Promise.resolve();
      // Everything written so far goes to the old file; from here on lines go to the new one.
      flush();
      const old = file;
      let next: FileWriter;
      try {
        next = openFile(spec.path); // on failure lines keep going to the old file
      } catch (e) {
        return Promise.reject(e);
      }
      // The new file waits for the old one to write what it holds: both may be the same
      // file (a reopen without rotation), and lines must stay in order.
      next.held = true;
      file = next;
      return old.end().then(() => {
        lostBefore += old.lost;
        next.release();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        flush();
        if (!file) {
          if (process.stdout.writableNeedDrain) process.stdout.once('drain', () => resolve());
          else resolve();
          return;
        }
        void file.end().then(resolve);
      }),
  };
}
