// Proofs on the command line: `vigil log prove` (one entry's inclusion under a sealed
// checkpoint), `vigil log consistency` (two checkpoints), `vigil log check-proof` (their
// arithmetic, offline) and `vigil verify --proof` (that, and the checkpoints anchored in a
// real BMC on swtpm, in its own network namespace over HTTPS: test/attest/netns-bmc.ts). The log is written by the log library and each seal anchored as the
// agent's Anchorer would.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogWriter, type Seal } from '../../src/log/index.js';
import { runVigil } from '../helpers/agent-process.js';
import { caPems, createBmcNamespace, netnsUnavailable, type BmcNamespace, type NetnsBmc } from './netns-bmc.js';

let skip: string | undefined;
let work = '';
let ns: BmcNamespace | undefined;
let service: NetnsBmc | undefined;
let trust = '';
const logDir = () => join(work, 'log');
const unanchoredDir = () => join(work, 'unanchored');

/** A log of `n` entries sealed every `batch`; returns its seals. */
function writeLog(dir: string, n: number, batch: number): Seal[] {
  const seals: Seal[] = [];
  const w = LogWriter.open(dir, { batchSize: batch, batchMs: 3_600_000, onSeal: (s) => seals.push(s) });
  for (let i = 0; i < n; i++) w.append({ seq: 0, time: String(1_700_000_000_000_000_000n + BigInt(i)), kind: 'test', note: `entry ${i + 1}` } as { seq: number });
  w.close();
  return seals;
}

before(async () => {
  skip = await netnsUnavailable();
  if (skip) process.stdout.write(`# the BMC tests of this file skip: ${skip}\n`);
  work = mkdtempSync(join(tmpdir(), 'vproof-'));
  const seals = writeLog(logDir(), 1000, 97);
  writeLog(unanchoredDir(), 50, 50);
  if (skip) return;
  ns = createBmcNamespace('prf');
  service = await ns.startBmc({ stateDir: join(work, 'bmc'), port: 8443 });
  trust = join(work, 'trust.pem');
  writeFileSync(trust, caPems(join(work, 'bmc')));
  const host = service.client('host');
  for (const s of seals) await host.anchor(s.checkpoint);
});
after(async () => {
  await ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const vigil = async (args: string[]) => { const r = await runVigil(args); return { code: r.code, out: r.stdout, err: r.stderr }; };
// Over HTTPS, the BMC's certificate checked as the CA (its chain and the address it names).
const verifyProofCli = (file: string, extra: string[] = []) => vigil(['verify', '--bmc', service?.url ?? '', '--token', service?.tokenFiles.verifier ?? '', '--ca', service?.certFile ?? '', '--trust', trust, '--proof', file, ...extra]);

function edited(file: string, edit: (p: Record<string, unknown>) => void): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(p);
  const out = `${file}.edited-${Math.random().toString(16).slice(2)}.json`;
  writeFileSync(out, JSON.stringify(p));
  return out;
}

test('vigil log prove and check-proof: an entry under the last checkpoint and under the first one that holds it', async () => {
  const last = join(work, 'p-last.json');
  assert.equal((await vigil(['log', 'prove', '--log', logDir(), '--seq', '500', '--out', last])).code, 0);
  const p = JSON.parse(readFileSync(last, 'utf8')) as { vigilProof: string; seq: number; entry: string; leafIndex: number; seal: { batch: number; treeSize: number } };
  assert.deepEqual([p.vigilProof, p.seq, p.leafIndex, p.seal.batch, p.seal.treeSize], ['inclusion', 500, 499, 11, 1000]);
  assert.match(p.entry, /^\{"seq":500,.*"note":"entry 500"\}$/);
  const ok = await vigil(['log', 'check-proof', last]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^proof checks: entry seq 500 is in the tree of batch 11 \(1000 entries\); checkpoint [0-9a-f]{64}/);
  // Under batch 6 (seq 486..582), and every seq of a small range, on stdout.
  for (const seq of [1, 485, 486, 582, 999, 1000]) {
    const batch = seq <= 582 && seq >= 486 ? 6 : 11;
    const r = await vigil(['log', 'prove', '--log', logDir(), '--seq', String(seq), '--batch', String(batch)]);
    assert.equal(r.code, 0, r.err);
    const f = join(work, `p-${seq}.json`);
    writeFileSync(f, r.out);
    assert.equal((await vigil(['log', 'check-proof', f])).code, 0, `seq ${seq} under batch ${batch}`);
  }
  const late = await vigil(['log', 'prove', '--log', logDir(), '--seq', '600', '--batch', '6']);
  assert.equal(late.code, 1);
  assert.match(late.err, /FAILED: entry seq 600 comes after batch 6 \(which ends at seq 582\): choose a later batch/);
  const none = await vigil(['log', 'prove', '--log', logDir(), '--seq', '1001']);
  assert.equal(none.code, 1);
  assert.match(none.err, /has no entry seq 1001 \(it holds seq 1\.\.1000\)/);
  assert.equal((await vigil(['log', 'prove', '--log', logDir()])).code, 2, 'usage: --seq is needed');
});

test('check-proof names what is wrong with an edited proof', async () => {
  const f = join(work, 'p-edit.json');
  assert.equal((await vigil(['log', 'prove', '--log', logDir(), '--seq', '321', '--out', f])).code, 0);
  const cases: Array<[string, (p: Record<string, unknown>) => void, RegExp]> = [
    ['an edited entry', (p) => { p.entry = (p.entry as string).replace('"entry 321"', '"entry 322"'); }, /entry seq 321: its bytes hash to [0-9a-f]{64}, the proof says [0-9a-f]{64} \(the entry was modified\)/],
    ['another seq', (p) => { p.seq = 322; }, /the entry's own seq \(321\) is not the proof's seq 322/],
    ['an edited path hash', (p) => { (p.path as string[])[2] = '0'.repeat(64); }, /the audit path gives root [0-9a-f]{64}, the seal of batch 11 has [0-9a-f]{64} \(the entry is not in that tree\)/],
    ['a path one hash short', (p) => { (p.path as string[]).pop(); }, /the proof has \d+ hashes; leaf 320 of a tree of 1000 needs \d+/],
    ['another root in the seal', (p) => { (p.seal as { root: string }).root = '1'.repeat(64); }, /the seal of batch 11: its fields give checkpoint [0-9a-f]{64}, it claims [0-9a-f]{64}/],
    ['not a proof', (p) => { p.vigilProof = 'receipt'; }, /vigilProof is "receipt", expected "inclusion" or "consistency"/],
  ];
  for (const [name, edit, message] of cases) {
    const r = await vigil(['log', 'check-proof', edited(f, edit)]);
    assert.equal(r.code, 1, name);
    assert.match(r.err, message, name);
  }
});

test('vigil log consistency: each earlier checkpoint is a prefix of each later one', async () => {
  for (const [from, to] of [[1, 11], [3, 7], [10, 11], [5, 5]] as const) {
    const f = join(work, `c-${from}-${to}.json`);
    const r = await vigil(['log', 'consistency', '--log', logDir(), '--from', String(from), '--to', String(to), '--out', f]);
    assert.equal(r.code, 0, r.err);
    const ok = await vigil(['log', 'check-proof', f]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, new RegExp(`the tree of batch ${to} \\(\\d+ entries\\) extends that of batch ${from}`));
  }
  const f = join(work, 'c-2-9.json');
  assert.equal((await vigil(['log', 'consistency', '--log', logDir(), '--from', '2', '--to', '9', '--out', f])).code, 0);
  const bad = await vigil(['log', 'check-proof', edited(f, (p) => { (p.path as string[])[0] = 'f'.repeat(64); })]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /FAILED: .*the proof gives [0-9a-f]{64}, expected [0-9a-f]{64}/);
  const backwards = await vigil(['log', 'consistency', '--log', logDir(), '--from', '9', '--to', '2']);
  assert.equal(backwards.code, 1);
  assert.match(backwards.err, /batch 9 comes after batch 2/);
});

test('vigil verify --proof: the proof checks and its checkpoints are anchored in the BMC', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const inc = join(work, 'v-inc.json');
  assert.equal((await vigil(['log', 'prove', '--log', logDir(), '--seq', '777', '--batch', '9', '--out', inc])).code, 0);
  const state = join(work, 'state');
  const r = await verifyProofCli(inc, ['--state', state]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^proof verified: entry seq 777 is in the anchored tree of batch 9 \(anchor #9 at \d{4}-/);
  const con = join(work, 'v-con.json');
  assert.equal((await vigil(['log', 'consistency', '--log', logDir(), '--from', '2', '--out', con])).code, 0);
  const c = await verifyProofCli(con, ['--state', state]);
  assert.equal(c.code, 0, c.err);
  assert.match(c.out, /^proof verified: the anchored tree of batch 11 extends that of batch 2 \(anchor #2 at [^,]+, anchor #11 at /);
  // A log the BMC never anchored: its arithmetic holds, its checkpoint is nowhere.
  const other = join(work, 'v-other.json');
  assert.equal((await vigil(['log', 'prove', '--log', unanchoredDir(), '--seq', '7', '--out', other])).code, 0);
  assert.equal((await vigil(['log', 'check-proof', other])).code, 0);
  const na = await verifyProofCli(other, ['--state', state]);
  assert.equal(na.code, 1, na.out);
  assert.match(na.err, /FAILED \(not-anchored\): the checkpoint of batch 1 \([0-9a-f]{64}\) is not in the BMC's anchor list \(11 anchors\): the proof's tree was never anchored/);
  // An edited entry fails before the BMC is asked.
  const forged = await verifyProofCli(edited(inc, (p) => { p.entry = (p.entry as string).replace('"entry 777"', '"entry 778"'); }), ['--state', state]);
  assert.equal(forged.code, 1);
  assert.match(forged.err, /FAILED \(proof\): the proof does not check: entry seq 777: its bytes hash to/);
  const both = await vigil(['verify', '--bmc', service.url, '--token', service.tokenFiles.verifier, '--ca', service.certFile, '--proof', inc, '--log', logDir()]);
  assert.equal(both.code, 2);
  const json = await verifyProofCli(inc, ['--state', state, '--json']);
  assert.equal(json.code, 0);
  const parsed = JSON.parse(json.out) as { ok: boolean; kind: string; anchored: Array<{ batch: number; anchorSeq: number }> };
  assert.deepEqual([parsed.ok, parsed.kind, parsed.anchored.map((a) => [a.batch, a.anchorSeq])], [true, 'inclusion', [[9, 9]]]);
});
