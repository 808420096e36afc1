// The fast log verifier (offsets instead of views, the native helper, worker threads)
// against the verifier as it was (reference-verify.ts): the same logs, edited in many
// ways an attacker on the host could, give the same summary or the same first error —
// check, place and message — in every mode. Also: the facts gathered for vigil verify, and
// joins between segments checked in parallel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogVerifyError, LogWriter, nativeChain, nativeUnavailable, verifyLogDir, verifyLogDirParallel, type LogSummary } from '../../src/log/index.js';
import { referenceVerifyLogDir } from './reference-verify.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-logfast-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const segments = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('segment-')).sort();

/** Entries in the agent's shape (seq, time, host, kind, syscall first), with some of its own records. */
function agentLikeEntry(i: number): { seq: number; verdict: { level: string; rules: string[]; action: string } } & Record<string, unknown> {
  const own = i % 23 === 0 ? 'heartbeat' : i === 1 ? 'start' : i % 37 === 0 ? 'programs-changed' : undefined;
  const level = i % 17 === 0 || own === 'programs-changed' ? 'INSECURE' : 'NORMAL';
  return {
    seq: 0, time: String(1_796_000_000_000_000_000n + BigInt(i) * 1000n), host: i % 5 === 0 ? 'h\\"ö"st' : 'bench',
    kind: own ? 'agent' : 'file', syscall: own ?? 'openat',
    args: own === 'start' ? { pid: 1, heartbeatSeconds: 7 } : own === 'programs-changed' ? { changes: [{ change: 'detached', program: `p${i}` }] } : { path: `/etc/f${i}`, note: 'ü ✓ "q"' },
    container: { id: 'c'.repeat(64), name: 'n', image: 'i', runtime: 'docker', labels: { a: 'b' } },
    verdict: { level, rules: [], action: level === 'INSECURE' ? 'alert' : 'none' },
  };
}

function writeLog(dir: string, n: number, segmentBytes = 6000): void {
  const w = LogWriter.open(dir, { batchSize: 5, batchMs: 3_600_000, segmentBytes });
  for (let i = 0; i < n; i++) w.append(agentLikeEntry(i));
  w.close();
}

type Outcome = { ok: true; summary: Omit<LogSummary, 'facts'> } | { ok: false; check: string; message: string };
function outcome(fn: () => Omit<LogSummary, 'facts'>): Outcome {
  try {
    const s = fn();
    return { ok: true, summary: { entries: s.entries, firstSeq: s.firstSeq, lastSeq: s.lastSeq, seals: s.seals, unsealed: s.unsealed, segments: s.segments } };
  } catch (e) {
    const err = e as { check?: string; message: string; name: string };
    if (err.name !== 'LogVerifyError' && err.name !== 'ReferenceLogVerifyError') return { ok: false, check: 'exception', message: err.message };
    return { ok: false, check: err.check ?? '', message: err.message };
  }
}
async function outcomeAsync(fn: () => Promise<LogSummary>): Promise<Outcome> {
  let s: LogSummary;
  try { s = await fn(); } catch (e) { return outcome(() => { throw e; }); }
  return outcome(() => s);
}

/** A small deterministic PRNG (xorshift32): the same edits on every run. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

const HEXDIGITS = '0123456789abcdef';
// Every kind of edit six times; each case is checked six ways (worker threads start anew each time).
const CASES = 66;
type Edit = (files: string[][], r: (n: number) => number) => string;

/** Edits on the segment files as lists of lines; each returns what it did. */
const edits: Record<string, Edit> = {
  'flip a byte of an entry': (f, r) => {
    const s = f[r(f.length)] as string[]; const i = r(s.length); const l = s[i] as string;
    const at = r(Math.max(1, l.length - 160)); const c = l[at] === 'x' ? 'y' : 'x';
    s[i] = l.slice(0, at) + c + l.slice(at + 1);
    return `line ${i} byte ${at}`;
  },
  'change a hex digit of chain.prev or chain.hash': (f, r) => {
    const s = f[r(f.length)] as string[]; const i = r(s.length); const l = s[i] as string;
    if (!l.startsWith('{"seq"')) return 'no-op (a seal)';
    const at = l.length - 159 + (r(2) === 0 ? 18 : 92) + r(64);
    s[i] = l.slice(0, at) + HEXDIGITS[(HEXDIGITS.indexOf(l[at] as string) + 1 + r(15)) % 16] + l.slice(at + 1);
    return `line ${i} suffix byte ${at}`;
  },
  'uppercase chain.prev': (f, r) => {
    const s = f[r(f.length)] as string[]; const i = r(s.length); const l = s[i] as string;
    if (!l.startsWith('{"seq"')) return 'no-op (a seal)';
    const at = l.length - 159 + 18;
    s[i] = l.slice(0, at) + l.slice(at, at + 64).toUpperCase() + l.slice(at + 64);
    return `line ${i}`;
  },
  'delete a line': (f, r) => { const s = f[r(f.length)] as string[]; const i = r(s.length); s.splice(i, 1); return `line ${i}`; },
  'swap two neighbouring lines': (f, r) => {
    const s = f[r(f.length)] as string[]; if (s.length < 2) return 'no-op'; const i = r(s.length - 1);
    [s[i], s[i + 1]] = [s[i + 1] as string, s[i] as string]; return `lines ${i}, ${i + 1}`;
  },
  'duplicate a line': (f, r) => { const s = f[r(f.length)] as string[]; const i = r(s.length); s.splice(i, 0, s[i] as string); return `line ${i}`; },
  'move the last line of a segment to the next': (f, r) => {
    if (f.length < 2) return 'no-op'; const k = r(f.length - 1); const l = (f[k] as string[]).pop() as string; (f[k + 1] as string[]).unshift(l); return `segment ${k}`;
  },
  'move the first line of a segment to the one before': (f, r) => {
    if (f.length < 2) return 'no-op'; const k = 1 + r(f.length - 1); const l = (f[k] as string[]).shift() as string; (f[k - 1] as string[]).push(l); return `segment ${k}`;
  },
  'empty a segment': (f, r) => { const k = r(f.length); f[k] = []; return `segment ${k}`; },
  'edit a seal field': (f, r) => {
    const s = f[r(f.length)] as string[]; const seals = s.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('{"seal"'));
    if (seals.length === 0) return 'no-op';
    const [l, i] = seals[r(seals.length)] as readonly [string, number];
    const field = ['"lastSeq":', '"treeSize":', '"batch":'][r(3)] as string;
    s[i] = l.replace(new RegExp(`${field}(\\d+)`), (_m, d: string) => `${field}${Number(d) + 1}`);
    return `line ${i} ${field}`;
  },
  'forge an entry with its own correct hash': (f, r) => {
    // An entry rehashed over its edited bytes from its recorded prev: only seq/chain/seal checks can tell.
    const s = f[r(f.length)] as string[]; const i = r(s.length); const l = s[i] as string;
    if (!l.startsWith('{"seq"')) return 'no-op (a seal)';
    const body = l.slice(0, l.length - 159).replace('openat', 'unlink');
    const prev = l.slice(l.length - 159 + 18, l.length - 159 + 82);
    const hash = createHashHex(Buffer.concat([Buffer.from(prev, 'hex'), Buffer.from(`${body}}`)]));
    s[i] = `${body},"chain":{"prev":"${prev}","hash":"${hash}"}}`;
    return `line ${i}`;
  },
};

function createHashHex(b: Buffer): string { return createHash('sha256').update(b).digest('hex'); }

test('the fast verifier (TypeScript, native, small pieces, 2 and 3 threads) gives the reference verifier\'s outcome for every edit', async (t) => {
  const base = tempDir(t);
  const orig = join(base, 'orig');
  writeLog(orig, 300);
  const names = segments(orig);
  assert.ok(names.length >= 5, `several segments (${names.length})`);
  const native = nativeChain() !== undefined;
  if (!native) t.diagnostic(`the native helper is not built (${nativeUnavailable}): only the TypeScript path is compared`);
  const modes: Array<[string, (dir: string) => Promise<Outcome>]> = [
    ['TypeScript', async (d) => outcome(() => verifyLogDir(d, { native: false }))],
    ...(native ? [['native', async (d: string) => outcome(() => verifyLogDir(d))] as [string, (dir: string) => Promise<Outcome>]] : []),
    // Pieces smaller than a line: every piece ends mid-line, and the buffer grows.
    ['TypeScript, 700-byte pieces', async (d) => outcome(() => verifyLogDir(d, { native: false, chunkBytes: 700 }))],
    ['2 threads', (d) => outcomeAsync(() => verifyLogDirParallel(d, { threads: 2 }))],
    ['3 threads, TypeScript', (d) => outcomeAsync(() => verifyLogDirParallel(d, { threads: 3, native: false }))],
  ];
  // The untouched log first.
  const ref0 = outcome(() => referenceVerifyLogDir(orig));
  assert.equal(ref0.ok, true);
  for (const [name, run] of modes) assert.deepEqual(await run(orig), ref0, name);

  const r = rng(20261201);
  const kinds = Object.keys(edits);
  const seen = new Map<string, number>();
  let detected = 0;
  for (let c = 0; c < CASES; c++) {
    const kind = kinds[c % kinds.length] as string;
    const dir = join(base, `case-${c}`);
    cpSync(orig, dir, { recursive: true });
    const files = names.map((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));
    const what = (edits[kind] as Edit)(files, r);
    names.forEach((n, k) => writeFileSync(join(dir, n), (files[k] as string[]).map((l) => `${l}\n`).join('')));
    // A torn tail now and then: cut inside the last line of a segment.
    if (c % 7 === 3) { const n = names[r(names.length)] as string; const b = readFileSync(join(dir, n)); writeFileSync(join(dir, n), b.subarray(0, Math.max(0, b.length - 1 - r(40)))); }
    if (c % 11 === 5) unlinkSync(join(dir, names[1 + r(names.length - 1)] as string));
    const ref = outcome(() => referenceVerifyLogDir(dir));
    if (!ref.ok) { detected++; seen.set(ref.check, (seen.get(ref.check) ?? 0) + 1); }
    for (const [name, run] of modes) assert.deepEqual(await run(dir), ref, `case ${c} (${kind}: ${what}), ${name}`);
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`${detected} of ${CASES} edits detected; checks: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  assert.ok(detected >= CASES * 0.7, `most edits change what is verified (${detected})`);
  for (const check of ['modified', 'missing', 'chain', 'seal', 'format', 'duplicate', 'torn']) assert.ok(seen.has(check), `some edit is reported as ${check}`);
});

test('the facts vigil verify reads (last time, last agent record, asked-for records) are the same in every mode', async (t) => {
  const dir = tempDir(t);
  writeLog(dir, 200);
  const want = ['start', 'programs-changed'];
  const a = verifyLogDir(dir, { agentRecords: want, native: false });
  const b = verifyLogDir(dir, { agentRecords: want });
  const c = await verifyLogDirParallel(dir, { agentRecords: want, threads: 3 });
  assert.deepEqual(b.facts, a.facts);
  assert.deepEqual(c.facts, a.facts);
  assert.equal(a.facts.lastTime, String(1_796_000_000_000_000_000n + 199n * 1000n));
  assert.equal(a.facts.lastAgent, undefined, 'the last entry (199) is an event');
  assert.deepEqual(a.facts.records.map((r) => [r.seq, r.what]), [[2, 'start'], [38, 'programs-changed'], [75, 'programs-changed'], [112, 'programs-changed'], [149, 'programs-changed'], [186, 'programs-changed']]);
  const start = JSON.parse(a.facts.records[0]?.json ?? '{}') as { args?: { heartbeatSeconds?: number } };
  assert.equal(start.args?.heartbeatSeconds, 7);
});

test('a workload cannot pass for the agent: "kind":"agent" inside an event\'s labels is not an agent record', (t) => {
  const dir = tempDir(t);
  const w = LogWriter.open(dir, { batchSize: 100 });
  w.append({ ...agentLikeEntry(3), kind: 'agent', syscall: 'start', args: { heartbeatSeconds: 5 } } as { seq: number });
  // An event whose container labels spell the agent's stop record, as the last entry.
  w.append({ ...agentLikeEntry(4), container: { id: 'c', labels: { x: '1', kind: 'agent', syscall: 'stop' } } } as { seq: number });
  w.close();
  for (const native of [false, true]) {
    const s = verifyLogDir(dir, { agentRecords: ['start', 'stop'], native });
    assert.equal(s.facts.lastAgent, undefined, 'the last entry is the workload\'s');
    assert.deepEqual(s.facts.records.map((r) => r.what), ['start']);
  }
});

test('segments checked in parallel: a join that does not hold (the seal before a segment edited away) is found as in one thread', async (t) => {
  const dir = tempDir(t);
  writeLog(dir, 120, 3000);
  const names = segments(dir);
  // Segment 2 starts after segment 1's last seal; drop that seal: segment 2's worker starts
  // from the seal before it, which is not where segment 1 ends.
  const p = join(dir, names[1] as string);
  const ls = readFileSync(p, 'utf8').split('\n').filter(Boolean);
  writeFileSync(p, ls.slice(0, -1).map((l) => `${l}\n`).join(''));
  const ref = outcome(() => referenceVerifyLogDir(dir));
  assert.equal(ref.ok, false);
  assert.deepEqual(await outcomeAsync(() => verifyLogDirParallel(dir, { threads: 2 })), ref);
  await assert.rejects(verifyLogDirParallel(dir, { threads: 2 }), (e: unknown) => e instanceof LogVerifyError);
});

test('unusual entries (no time or host, 100 KiB lines, escapes at the end of the host) verify the same in every mode', async (t) => {
  const dir = tempDir(t);
  const w = LogWriter.open(dir, { batchSize: 3, batchMs: 3_600_000, segmentBytes: 150_000 });
  const odd: Array<Record<string, unknown>> = [
    { seq: 0, kind: 'file' },
    { seq: 0, time: 'x1', host: 'h', kind: 'file' },
    { seq: 0, time: '12', host: 'h\\', kind: 'agent', syscall: 'start', args: { heartbeatSeconds: 3 } },
    { seq: 0, time: '13', host: '"', kind: 'agent', syscall: 'Weird_Name' },
    { seq: 0, time: '14', host: 'h', kind: 'file', args: { big: 'z'.repeat(100 * 1024) } },
    { seq: 0, time: '15', host: 'h', kind: 'agentx', syscall: 'stop' },
    { seq: 0, time: '16', kind: 'agent', host: 'h', syscall: 'stop' },
  ];
  for (let i = 0; i < 40; i++) w.append({ ...(odd[i % odd.length] as object) } as { seq: number });
  w.close();
  const ref = outcome(() => referenceVerifyLogDir(dir));
  assert.equal(ref.ok, true);
  const a = verifyLogDir(dir, { native: false, agentRecords: ['start', 'stop'] });
  const b = verifyLogDir(dir, { agentRecords: ['start', 'stop'], chunkBytes: 1000 });
  const c = await verifyLogDirParallel(dir, { threads: 2, agentRecords: ['start', 'stop'] });
  for (const s of [a, b, c]) assert.deepEqual(outcome(() => s), ref);
  assert.deepEqual(b.facts, a.facts);
  assert.deepEqual(c.facts, a.facts);
  // Agent records only where the agent writes them: seq, time, host, then kind "agent".
  assert.deepEqual(a.facts.records.map((r) => r.what), Array(6).fill('start'));
  assert.equal(a.facts.lastTime, '14', 'the last entry (the 100 KiB one) has time 14');
});
