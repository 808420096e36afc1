// The anchor list on disk: pending → extended/dropped records, durable appends, recovery
// from a write torn by a crash, and failed writes that leave the file as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnchorLog, type PendingAnchor } from '../../src/bmc/anchors.js';
import { BmcError } from '../../src/bmc/index.js';

const pending = (seq: number, anchor = 'aa'): PendingAnchor => ({ seq, time: new Date(0).toISOString(), anchor: anchor.repeat(32), pcr: 23, resetCount: 1, restartCount: 0 });
const entry = (seq: number, anchor = 'aa') => ({ ...pending(seq, anchor), pcrValue: 'bb'.repeat(32) });

function withDir(body: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-anchors-'));
  try { body(join(dir, 'anchors.jsonl')); } finally { rmSync(dir, { recursive: true, force: true }); }
}
const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; state?: string });

test('pending, extended and dropped records survive reopening; a dropped seq is used again; a torn last line is cut off', () => withDir((path) => {
  const log = new AnchorLog(path);
  log.recordPending(pending(1)); log.recordExtended(entry(1));
  log.recordPending(pending(2, 'cc')); log.recordDropped('test');
  assert.equal(log.nextSeq, 2, 'the dropped anchor leaves no gap');
  log.recordPending(pending(2)); log.recordExtended(entry(2));
  log.recordPending(pending(3));
  log.close();
  appendFileSync(path, '{"seq":3,"time":"19'); // a crash in the middle of a write

  const reopened = new AnchorLog(path);
  assert.deepEqual(reopened.list().map((e) => e.seq), [1, 2]);
  assert.deepEqual(reopened.pending, pending(3), 'the pending anchor is back, to be settled');
  assert.throws(() => reopened.recordPending(pending(3, 'dd')), /anchor 3 is still pending/);
  reopened.recordExtended(entry(3));
  reopened.close();
  assert.deepEqual(lines(path).map((l) => `${l.seq}${l.state ? `:${l.state}` : ''}`), ['1:pending', '1', '2:pending', '2:dropped', '2:pending', '2', '3:pending', '3']);
  assert.deepEqual(new AnchorLog(path).list().map((e) => e.seq), [1, 2, 3]);
}));

test('a list written before pending records existed reads the same', () => withDir((path) => {
  writeFileSync(path, [entry(1), entry(2)].map((e) => JSON.stringify(e) + '\n').join(''));
  const log = new AnchorLog(path);
  assert.deepEqual(log.list(), [entry(1), entry(2)]);
  assert.equal(log.pending, undefined);
  assert.equal(log.nextSeq, 3);
  log.close();
}));

test('a damaged line, or records that contradict each other, are refused with the line number', () => withDir((path) => {
  const cases: [unknown[], RegExp][] = [
    [[entry(1), 'not json', entry(3)], /line 2 is not JSON/],
    [[entry(1), [1]], /line 2 is not a JSON object/],
    [[{ ...pending(1), state: 'pending' }, { ...pending(2), state: 'pending' }], /line 2 records anchor 2 as pending while anchor 1 is still unsettled/],
    [[entry(1), { ...pending(3), state: 'pending' }], /line 2 records anchor 3 as pending where 2 is next/],
    [[{ ...pending(1), state: 'pending' }, entry(1, 'cc')], /line 2 records anchor 1 as extended while anchor 1 is pending/],
    [[{ seq: 1, anchor: 'aa'.repeat(32), state: 'dropped', reason: 'x' }], /line 1 drops anchor 1, which is not the pending one/],
    [[{ ...entry(1), state: 'maybe' }], /line 1 has an unknown state "maybe"/],
  ];
  for (const [records, message] of cases) {
    writeFileSync(path, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r)) + '\n').join(''));
    assert.throws(() => new AnchorLog(path), (e: unknown) => e instanceof BmcError && e.code === 'BMC_STATE' && message.test(e.message) && e.message.includes(path), String(message));
  }
}));

test('a failed write refuses with BMC_STATE and leaves the file and the list as they were', () => withDir((path) => {
  let failNext = false;
  const log = new AnchorLog(path, { beforeWrite: () => { if (failNext) { failNext = false; throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }); } } });
  log.recordPending(pending(1)); log.recordExtended(entry(1));
  const before = readFileSync(path, 'utf8');
  failNext = true;
  assert.throws(() => log.recordPending(pending(2)), (e: unknown) => e instanceof BmcError && e.code === 'BMC_STATE' && /cannot write the anchor list .*: ENOSPC/.test(e.message));
  assert.equal(log.pending, undefined, 'nothing is pending after a refused record');
  assert.equal(readFileSync(path, 'utf8'), before);
  log.recordPending(pending(2));
  failNext = true;
  assert.throws(() => log.recordExtended(entry(2)), /ENOSPC/);
  assert.deepEqual(log.pending, pending(2), 'still pending when the extended record could not be written');
  assert.equal(log.length, 1);
  log.recordExtended(entry(2));
  log.close();
  assert.deepEqual(new AnchorLog(path).list().map((e) => e.seq), [1, 2]);
}));
