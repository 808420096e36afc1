// The log directory: chain, seals (count, time, at once after INSECURE, close), restart,
// a torn tail after a crash, rotation, and what each kind of edit is reported as.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogError, LogVerifyError, LogWriter, checkpointOf, verifyLogDir, ZERO_HASH, type Seal } from '../../src/log/index.js';
import { until } from '../helpers/wait.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const entry = (n: number, level = 'NORMAL') => ({ seq: 0, time: String(1_700_000_000_000_000_000n + BigInt(n)), kind: 'file', args: { path: `/etc/f${n}`, note: 'ü ✓' }, verdict: { level, rules: [], action: 'none' } });
const segments = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('segment-')).sort();
const lines = (dir: string, seg?: string) => readFileSync(join(dir, seg ?? (segments(dir).at(-1) as string)), 'utf8').split('\n').filter(Boolean);

test('entries chain, batches seal by count, checkpoints chain, and the directory verifies', (t) => {
  const dir = tempDir(t);
  const seals: Seal[] = [];
  const w = LogWriter.open(dir, { batchSize: 10, batchMs: 3_600_000, onSeal: (s) => seals.push(s) });
  for (let i = 0; i < 35; i++) w.append(entry(i));
  assert.equal(seals.length, 3);
  assert.deepEqual(seals.map((s) => [s.firstSeq, s.lastSeq, s.treeSize, s.reason]), [[1, 10, 10, 'count'], [11, 20, 20, 'count'], [21, 30, 30, 'count']]);
  w.close();
  assert.equal(seals.length, 4);
  assert.equal(seals[3]?.reason, 'stop');
  let prev: Buffer = ZERO_HASH;
  for (const s of seals) {
    assert.equal(s.prev, prev.toString('hex'));
    prev = checkpointOf(prev, Buffer.from(s.root, 'hex'), s.treeSize, s.lastSeq);
    assert.equal(s.checkpoint, prev.toString('hex'));
  }
  const first = JSON.parse(lines(dir)[0] as string) as { seq: number; chain: { prev: string; hash: string } };
  assert.equal(first.seq, 1);
  assert.equal(first.chain.prev, '0'.repeat(64));
  // The canonical bytes are the line without the chain member.
  const { chain, ...rest } = first;
  assert.equal(chain.hash, createHash('sha256').update(ZERO_HASH).update(JSON.stringify(rest)).digest('hex'));
  const sum = verifyLogDir(dir);
  assert.deepEqual([sum.entries, sum.firstSeq, sum.lastSeq, sum.seals.length, sum.unsealed], [35, 1, 35, 4, 0]);
  assert.equal(sum.seals.at(-1)?.checkpoint, seals.at(-1)?.checkpoint);
});

test('an INSECURE entry is sealed at once, with the batch timer at an hour', (t) => {
  const dir = tempDir(t);
  const seals: Seal[] = [];
  const w = LogWriter.open(dir, { batchSize: 1000, batchMs: 3_600_000, onSeal: (s) => seals.push(s) });
  w.append(entry(1));
  w.append(entry(2));
  assert.equal(seals.length, 0);
  w.append(entry(3, 'INSECURE'));
  // Synchronous: the seal is durable and handed on before append returns.
  assert.equal(seals.length, 1);
  assert.deepEqual([seals[0]?.lastSeq, seals[0]?.reason], [3, 'insecure']);
  assert.match(lines(dir).at(-1) as string, /^\{"seal":\{"batch":1,/);
  w.close();
});

test('a batch seals by time', async (t) => {
  const dir = tempDir(t);
  const seals: Seal[] = [];
  const w = LogWriter.open(dir, { batchSize: 1000, batchMs: 50, onSeal: (s) => seals.push(s) });
  w.append(entry(1));
  await until('the time seal', () => seals.length === 1);
  assert.equal(seals[0]?.reason, 'time');
  w.close();
  assert.equal(seals.length, 1, 'nothing left to seal at close');
});

test('restart continues the seq, the chain and the tree; rotation by size keeps every segment verifiable', (t) => {
  const dir = tempDir(t);
  let w = LogWriter.open(dir, { batchSize: 7, segmentBytes: 2000 });
  for (let i = 0; i < 30; i++) w.append(entry(i));
  w.close();
  const before = segments(dir);
  assert.ok(before.length > 2, `rotated into ${before.length} segments`);
  w = LogWriter.open(dir, { batchSize: 7, segmentBytes: 2000 });
  assert.equal(w.nextSeq, 31);
  assert.equal(w.recovery.unsealed, 0);
  for (let i = 30; i < 50; i++) w.append(entry(i));
  w.close();
  const sum = verifyLogDir(dir);
  assert.deepEqual([sum.entries, sum.lastSeq, sum.unsealed], [50, 50, 0]);
  assert.ok(sum.segments > before.length);
});

test('a crash mid-batch loses nothing written; a torn last line is cut off without touching sealed bytes', (t) => {
  const dir = tempDir(t);
  const w1 = LogWriter.open(dir, { batchSize: 5, batchMs: 3_600_000 });
  for (let i = 0; i < 8; i++) w1.append(entry(i));
  w1.flush(); // written (no seal yet for 6..8): then the process "dies" without closing
  const seg = segments(dir).at(-1) as string;
  const sealedText = readFileSync(join(dir, seg), 'utf8');
  appendFileSync(join(dir, seg), '{"seq":9,"time":"17000000000000000');
  const w2 = LogWriter.open(dir, { batchSize: 5, batchMs: 3_600_000 });
  assert.equal(w2.recovery.tornBytes, 34);
  assert.equal(w2.recovery.tornSha256, createHash('sha256').update('{"seq":9,"time":"17000000000000000').digest('hex'));
  assert.equal(w2.recovery.unsealed, 3);
  assert.equal(w2.nextSeq, 9);
  assert.equal(readFileSync(join(dir, seg), 'utf8'), sealedText, 'the file is what it was before the torn write');
  w2.append(entry(9));
  w2.close();
  const sum = verifyLogDir(dir);
  assert.deepEqual([sum.entries, sum.lastSeq, sum.seals.map((s) => s.lastSeq)], [9, 9, [5, 9]]);
});

test('a damaged line before the tail stops the writer from appending', (t) => {
  const dir = tempDir(t);
  const w = LogWriter.open(dir, { batchSize: 100 });
  for (let i = 0; i < 4; i++) w.append(entry(i));
  w.flush();
  const path = join(dir, segments(dir)[0] as string);
  writeFileSync(path, readFileSync(path, 'utf8').replace('/etc/f2', '/etc/f9'));
  assert.throws(() => LogWriter.open(dir), (e: unknown) => e instanceof LogError && /line 3: its bytes do not give its chain.hash/.test(e.message));
});

function tampered(t: { after: (fn: () => void) => void }, edit: (ls: string[]) => string[]): LogVerifyError {
  const dir = tempDir(t);
  const w = LogWriter.open(dir, { batchSize: 4 });
  for (let i = 0; i < 10; i++) w.append(entry(i, i === 5 ? 'INSECURE' : 'NORMAL'));
  w.close();
  const seg = segments(dir)[0] as string;
  writeFileSync(join(dir, seg), edit(lines(dir, seg)).join('\n') + '\n');
  try { verifyLogDir(dir); } catch (e) { if (e instanceof LogVerifyError) return e; throw e; }
  throw new Error('the edit was not detected');
}

test('each kind of edit is reported as what it is', (t) => {
  const entryLines = (ls: string[]) => ls.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('{"seq"')).map(([, i]) => i);
  const modified = tampered(t, (ls) => ls.map((l) => l.replace('"level":"INSECURE"', '"level":"NORMAL"')));
  assert.equal(modified.check, 'modified');
  assert.match(modified.message, /line \d+: entry seq 6 was modified/);
  const deleted = tampered(t, (ls) => ls.filter((l) => !l.startsWith('{"seq":3,')));
  assert.equal(deleted.check, 'missing');
  assert.match(deleted.message, /entry seq 3 missing: seq 4 follows seq 2/);
  const reordered = tampered(t, (ls) => { const [a, b] = entryLines(ls).slice(1, 3) as [number, number]; const c = [...ls]; [c[a], c[b]] = [ls[b] as string, ls[a] as string]; return c; });
  assert.equal(reordered.check, 'missing');
  const swappedBack = tampered(t, (ls) => { const i = entryLines(ls)[2] as number; const c = [...ls]; c.splice(i + 1, 0, ls[i - 1] as string); return c; });
  assert.equal(swappedBack.check, 'order');
  const inserted = tampered(t, (ls) => { const c = [...ls]; c.splice(2, 0, (ls[1] as string).replace('/etc/f1', '/etc/forged')); return c; });
  assert.equal(inserted.check, 'modified');
  const sealEdited = tampered(t, (ls) => ls.map((l) => (l.startsWith('{"seal":{"batch":1,') ? l.replace(/"root":"[0-9a-f]{64}"/, `"root":"${'ab'.repeat(32)}"`) : l)));
  assert.equal(sealEdited.check, 'seal');
  assert.match(sealEdited.message, /seal of batch 1: the Merkle root is abab/);
});

test('a forged entry with a correct hash of its own still breaks the sequence or the chain', (t) => {
  const forge = (ls: string[], at: number, seqShift: number): string[] => {
    const prev = (JSON.parse(ls[at - 1] as string) as { chain: { hash: string } }).chain.hash;
    const o = JSON.parse(ls[at] as string) as Record<string, unknown>;
    delete o.chain;
    o.seq = (o.seq as number) + seqShift;
    (o.args as Record<string, string>).path = '/etc/forged';
    const canonical = JSON.stringify(o);
    const hash = createHash('sha256').update(Buffer.from(prev, 'hex')).update(canonical).digest('hex');
    const c = [...ls];
    c.splice(at, 0, `${canonical.slice(0, -1)},"chain":{"prev":"${prev}","hash":"${hash}"}}`);
    return c;
  };
  const dup = tampered(t, (ls) => forge(ls, 2, 0));
  assert.equal(dup.check, 'duplicate');
  assert.match(dup.message, /a second entry seq 3: an entry was inserted/);
  const replaced = tampered(t, (ls) => { const c = forge(ls, 2, 0); c.splice(3, 1); return c; });
  assert.equal(replaced.check, 'chain');
  assert.match(replaced.message, /entry seq 4 does not follow the previous entry/);
});
