// Where events go: JSON lines (the log tests and tools read) or the paper's text
// lines, to stdout or a file. Files are opened for append so a restart loses nothing.
import { createWriteStream, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { renderJson, renderText, type VigilEvent } from '../events/index.js';
import { ensureDirectory } from './atomic-file.js';

export type OutputFormat = 'jsonl' | 'text';
/** path '-' is stdout; insecureOnly: the output carries only INSECURE events (alerts). */
export interface OutputSpec { format: OutputFormat; path: string; insecureOnly?: boolean }

export interface EventOutput {
  write(e: VigilEvent): void;
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

/** onError hears of write failures (a full disk, a removed directory): they are logged, never a crash. */
export function openOutput(spec: OutputSpec, onError: (message: string) => void = () => undefined): EventOutput {
  const render = spec.format === 'jsonl' ? renderJson : renderText;
  // One line per failure: a full disk must not flood the log with one line per event.
  let failing = false;
  const reportError = (e: Error) => {
    if (failing) return;
    failing = true;
    onError(`cannot write ${spec.format} output ${spec.path === '-' ? 'stdout' : spec.path}: ${e.message}`);
  };
  const openFile = (path: string): WriteStream => {
    try {
      ensureDirectory(dirname(path));
    } catch (e) {
      throw new OutputSpecError(`${spec.format} output ${path}: ${(e as Error).message}`);
    }
    // A 1 MiB buffer: at 100,000 events/s a 16 KiB one asks for backpressure on every batch.
    // Opened here, synchronously, so a path that cannot be written fails at start with its reason.
    let fd: number;
    try {
      fd = openSync(path, 'a', 0o640);
    } catch (e) {
      throw new OutputSpecError(`${spec.format} output ${path}: cannot open it for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const file = createWriteStream(path, { fd, highWaterMark: 1 << 20 });
    file.on('error', reportError);
    failing = false;
    return file;
  };
  let stream: WriteStream | NodeJS.WriteStream;
  if (spec.path === '-') {
    stream = process.stdout;
    // A closed pipe (the reader went away) is an error to report, not a crash.
    process.stdout.on('error', reportError);
  } else {
    stream = openFile(spec.path);
  }
  // Lines are gathered and written as one chunk per event-loop turn (or per 256 KiB):
  // a stream.write per event cost as much as rendering it.
  let pending = '';
  let scheduled = false;
  let drainWait: { stream: WriteStream | NodeJS.WriteStream; done: Promise<void> } | undefined;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    if (stream.destroyed) return; // reported when it failed
    stream.write(chunk);
  };
  return {
    write: (e) => {
      if (spec.insecureOnly && e.verdict.level !== 'INSECURE') return;
      pending += render(e) + '\n';
      if (pending.length >= 256 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    drained: () => {
      flush();
      // A failed file (already reported) never drains: it must not hold the pipeline.
      if (stream.destroyed) return undefined;
      if (!stream.writableNeedDrain) return undefined;
      // One listener per backed-up stream, however many batches wait on it.
      if (!drainWait || drainWait.stream !== stream) {
        const s = stream;
        drainWait = { stream: s, done: new Promise<void>((resolve) => s.once('drain', () => { drainWait = undefined; resolve(); })) };
      }
      return drainWait.done;
    },
    reopen: () => {
      if (stream === process.stdout) return Promise.resolve();
      // Everything written so far goes to the old file; from here on lines go to the new one.
      flush();
      const old = stream as WriteStream;
      try {
        stream = openFile(spec.path); // on failure lines keep going to the old file
      } catch (e) {
        return Promise.reject(e);
      }
      if (old.destroyed) return Promise.resolve();
      return new Promise<void>((resolve) => old.end(() => resolve()));
    },
    close: () =>
      new Promise<void>((resolve) => {
        flush();
        if (stream === process.stdout) {
          if (process.stdout.writableNeedDrain) process.stdout.once('drain', () => resolve());
          else resolve();
          return;
        }
        if (stream.destroyed) resolve();
        else (stream as WriteStream).end(() => resolve());
      }),
  };
}
