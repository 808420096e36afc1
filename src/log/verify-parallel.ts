// The log directory checked over several threads. The chain allows it at segment
// boundaries: a segment other than the first starts right after a seal line of the one
// before (the writer only rotates after a seal), and a seal that verifies holds the whole
// position there (head, checkpoint, Merkle subtrees, last seq, batch). So each segment is
// checked in a worker from the seal that the previous segment's last line claims, and the
// joins are checked afterwards: segment k's result counts only when segment k-1, checked
// on its own, ended exactly at that seal (the position it computed is the one segment k
// was started from). At the first segment where that does not hold, or that failed, the
// rest is checked again in this thread from the position the segments before it reached,
// as verifyLogDir would: the outcome, and the first inconsistency's message, are the same.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CompactRange } from './merkle.js';
import { parseSealLine, type Seal } from './chain.js';
import { listSegments } from './store.js';
import {
  LogVerifyError, emptyTally, genesisPosition, positionAfterSeal, summaryOf, verifySegmentFile, verifyLogDir,
  type ChainPosition, type LogSummary, type SegmentTally, type VerifyLogOptions, type LogCheck,
} from './verify.js';

export interface ParallelVerifyOptions extends Omit<VerifyLogOptions, 'onEntry'> {
  /** Threads, this one included (default: defaultThreads(); at most one per segment; ≤ 1: this thread only). */
  threads?: number;
}

/** A position as it crosses threads. */
export interface PositionData {
  head: string; headHex: string; checkpoint: string; rangeSize: number; range: string[];
  expectSeq: number; batchFirst: number; sinceSeal: number; batch: number;
}

export function positionData(p: ChainPosition): PositionData {
  return {
    head: p.head.toString('hex'), headHex: p.headHex.toString('latin1'), checkpoint: p.checkpoint.toString('hex'), rangeSize: p.range.size,
    range: p.range.state().map((h) => h.toString('hex')), expectSeq: p.expectSeq, batchFirst: p.batchFirst, sinceSeal: p.sinceSeal, batch: p.batch,
  };
}

export function positionFrom(d: PositionData): ChainPosition {
  return {
    head: Buffer.from(d.head, 'hex'), headHex: Buffer.from(d.headHex, 'latin1'), checkpoint: Buffer.from(d.checkpoint, 'hex'),
    range: CompactRange.restore(d.rangeSize, d.range.map((h) => Buffer.from(h, 'hex'))), expectSeq: d.expectSeq, batchFirst: d.batchFirst, sinceSeal: d.sinceSeal, batch: d.batch,
  };
}

/** What a worker is asked: one segment, from a seal (null: the log's start). */
export interface SegmentTask { id: number; path: string; last: boolean; from: Seal | null; agentRecords: string[]; native: boolean; chunkBytes?: number }
export type SegmentResult =
  | { id: number; ok: true; end: PositionData; tally: SegmentTally }
  | { id: number; ok: false; check?: LogCheck; message: string };

/** What each worker is started with: every task, and the counter that hands them out. */
export interface WorkerJob { tasks: SegmentTask[]; counter: Int32Array }

/** Checks one segment from where its task says; a failure is reported, for the caller to check again. */
export function checkTask(task: SegmentTask): SegmentResult {
  try {
    const pos = task.from ? positionAfterSeal(task.from) : genesisPosition();
    const tally = emptyTally();
    verifySegmentFile(task.path, task.last, pos, tally, { agentRecords: task.agentRecords, native: task.native, chunkBytes: task.chunkBytes });
    return { id: task.id, ok: true, end: positionData(pos), tally };
  } catch (e) {
    return { id: task.id, ok: false, check: e instanceof LogVerifyError ? e.check : undefined, message: (e as Error).message };
  }
}

/** The seal on the last complete line of a segment, or null (no such line, or it is not a valid seal). */
export function lastSealOf(path: string): Seal | null {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return null; }
  try {
    const size = fstatSync(fd).size;
    // A seal line is a few KiB (its range has at most 53 hashes); read back until the
    // line before the last newline is whole.
    for (let want = 16 * 1024; ; want *= 4) {
      const from = Math.max(0, size - want);
      const buf = Buffer.alloc(size - from);
      let got = 0;
      while (got < buf.length) { const n = readSync(fd, buf, got, buf.length - got, from + got); if (n === 0) break; got += n; }
      const end = buf.lastIndexOf(10, got - 1);
      if (end < 0 || end !== got - 1) return null; // empty, or ends in a partial line
      const startNl = buf.lastIndexOf(10, end - 1);
      if (startNl < 0 && from > 0) continue;
      try { return parseSealLine(buf.subarray(startNl + 1, end), path); } catch { return null; }
    }
  } finally { closeSync(fd); }
}

function samePosition(end: PositionData, s: Seal): boolean {
  return end.sinceSeal === 0 && end.batch === s.batch && end.expectSeq === s.lastSeq + 1 && end.batchFirst === s.lastSeq + 1 && end.head === s.head &&
    end.headHex === s.head && end.checkpoint === s.checkpoint && end.rangeSize === s.treeSize && end.range.length === s.range.length && end.range.every((h, i) => h === s.range[i]);
}

function merge(into: SegmentTally, t: SegmentTally): void {
  if (t.entries > 0) {
    if (into.entries === 0) into.firstSeq = t.firstSeq;
    into.facts.lastAgent = t.facts.lastAgent;
  }
  into.entries += t.entries;
  into.seals.push(...t.seals);
  if (t.facts.lastTime !== undefined) into.facts.lastTime = t.facts.lastTime;
  into.facts.records.push(...t.facts.records);
}

/**
 * Threads worth starting: one, plus one per CPU that the load average leaves idle. On a
 * busy machine more threads win no more CPU time (the scheduler shares it out by session)
 * and only add their start-up and hand-over costs: bench/attest measured 2 threads at 0.7×
 * the speed of one at load 6 on 2 CPUs, where an idle machine gives them most of 2×.
 */
export function defaultThreads(): number {
  const cpus = availableParallelism();
  const idle = cpus - (loadavg()[0] ?? 0);
  return Math.max(1, Math.min(cpus, Math.round(idle) + 1));
}

/** Checks the log directory as verifyLogDir does, its segments spread over worker threads. */
export async function verifyLogDirParallel(dir: string, opts: ParallelVerifyOptions = {}): Promise<LogSummary> {
  const segments = listSegments(dir);
  const threads = Math.min(opts.threads ?? defaultThreads(), segments.length);
  if (threads <= 1) return verifyLogDir(dir, opts);
  const agentRecords = [...(opts.agentRecords ?? [])];
  const starts = segments.map((_, k) => (k === 0 ? null : lastSealOf((segments[k - 1] as { path: string }).path)));
  const tasks: SegmentTask[] = [];
  segments.forEach((seg, k) => {
    // A segment whose predecessor does not end in a seal cannot start on its own: the
    // check in this thread reaches it.
    if (k === 0 || starts[k]) tasks.push({ id: k, path: seg.path, last: k === segments.length - 1, from: starts[k] ?? null, agentRecords, native: opts.native !== false, chunkBytes: opts.chunkBytes });
  });
  const results = new Map<number, SegmentResult>();
  // This thread checks segments too, the workers beside it: each takes the next task from
  // a shared counter, so a slow segment (or a slow start of a worker) holds up no other.
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const workers = Array.from({ length: threads - 1 }, () => new Worker(new URL('./verify-worker.js', import.meta.url), { workerData: { tasks, counter } satisfies WorkerJob }));
  // A worker that fails (cannot start, dies) leaves its segments without a result: they
  // are then checked in this thread below, so it costs time, never the outcome.
  const finished = workers.map((w) => new Promise<void>((resolve) => {
    w.on('message', (r: SegmentResult | 'done') => { if (r === 'done') resolve(); else results.set(r.id, r); });
    w.on('error', () => resolve());
    w.on('exit', () => resolve());
  }));
  try {
    for (let i = Atomics.add(counter, 0, 1); i < tasks.length; i = Atomics.add(counter, 0, 1)) {
      const r = checkTask(tasks[i] as SegmentTask);
      results.set(r.id, r);
    }
    await Promise.all(finished);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const tally = emptyTally();
  let pos = genesisPosition();
  for (let k = 0; k < segments.length; k++) {
    const r = results.get(k);
    const s = starts[k];
    const prev = results.get(k - 1);
    const joins = k === 0 || (s !== null && s !== undefined && prev?.ok === true && samePosition(prev.end, s));
    if (!r || !r.ok || !joins) {
      // From here on in this thread, from where the segments before (all joined) left the chain.
      for (let j = k; j < segments.length; j++) {
        const seg = segments[j] as { path: string };
        verifySegmentFile(seg.path, j === segments.length - 1, pos, tally, opts);
      }
      return summaryOf(pos, tally, segments.length);
    }
    merge(tally, r.tally);
    pos = positionFrom(r.end);
  }
  return summaryOf(pos, tally, segments.length);
}

export { LogVerifyError };
