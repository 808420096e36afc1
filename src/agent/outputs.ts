// Where events go: JSON lines (the log tests and tools read) or the paper's text
// lines, to stdout or a file. Files are opened for append so a restart loses nothing.
import { createWriteStream, existsSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { renderJson, renderText, type VigilEvent } from '../events/index.js';

export type OutputFormat = 'jsonl' | 'text';
export interface OutputSpec { format: OutputFormat; path: string } // path '-' is stdout

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
export function parseOutputSpec(spec: string, where: string): OutputSpec {
  const i = spec.indexOf(':');
  const format = i < 0 ? spec : spec.slice(0, i);
  const path = i < 0 ? '-' : spec.slice(i + 1);
  if (format !== 'jsonl' && format !== 'text') {
    throw new OutputSpecError(`${where}: output '${spec}' has unknown format '${format}'; use jsonl:PATH or text:PATH (PATH '-' is stdout)`);
  }
  if (path === '') throw new OutputSpecError(`${where}: output '${spec}' has an empty path; use '-' for stdout`);
  return { format, path };
}

/**
 * mkdir -p, one level at a time. (Node 20's recursive mkdirSync never returns when the
 * kernel answers ENOENT under an existing parent, as /proc does.)
 */
function ensureDirectory(dir: string, what: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) ensureDirectory(parent, what);
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new OutputSpecError(`${what}: cannot create directory ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
}

/** onError hears of write failures (a full disk, a removed directory): they are logged, never a crash. */
export function openOutput(spec: OutputSpec, onError: (message: string) => void = () => undefined): EventOutput {
  const render = spec.format === 'jsonl' ? renderJson : renderText;
  const openFile = (path: string): WriteStream => {
    ensureDirectory(dirname(path), `${spec.format} output ${path}`);
    // A 1 MiB buffer: at 100,000 events/s a 16 KiB one asks for backpressure on every batch.
    // Opened here, synchronously, so a path that cannot be written fails at start with its reason.
    let fd: number;
    try {
      fd = openSync(path, 'a', 0o640);
    } catch (e) {
      throw new OutputSpecError(`${spec.format} output ${path}: cannot open it for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const file = createWriteStream(path, { fd, highWaterMark: 1 << 20 });
    file.on('error', (e) => onError(`cannot write ${spec.format} output ${path}: ${e.message}`));
    return file;
  };
  let stream: WriteStream | NodeJS.WriteStream = spec.path === '-' ? process.stdout : openFile(spec.path);
  // Lines are gathered and written as one chunk per event-loop turn (or per 256 KiB):
  // a stream.write per event cost as much as rendering it.
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    stream.write(chunk);
  };
  return {
    write: (e) => {
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
      return stream.writableNeedDrain ? new Promise<void>((resolve) => stream.once('drain', () => resolve())) : undefined;
    },
    reopen: () => {
      if (stream === process.stdout) return Promise.resolve();
      // Everything written so far goes to the old file; from here on lines go to the new one.
      flush();
      const old = stream as WriteStream;
      stream = openFile(spec.path);
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
