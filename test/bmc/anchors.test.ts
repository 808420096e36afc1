// The anchor list on disk: durable appends, and recovery from a write torn by a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnchorLog } from '../../src/bmc/anchors.js';
import { BmcError } from '../../src/bmc/index.js';

const entry = (seq: number) => ({ seq, time: new Date(0).toISOString(), anchor: 'aa'.repeat(32), pcr: 23, pcrValue: 'bb'.repeat(32), resetCount: 1, restartCount: 0 });

test('appends survive reopening; a torn last line is cut off', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-anchors-'));
  try {
    const path = join(dir, 'anchors.jsonl');
    const log = new AnchorLog(path);
    log.append(entry(1)); log.append(entry(2));
    log.close();
    appendFileSync(path, '{"seq":3,"time":"19'); // a crash in the middle of a write
    const reopened = new AnchorLog(path);
    assert.equal(reopened.length, 2);
    assert.equal(reopened.nextSeq, 3);
    reopened.append(entry(3));
    reopened.close();
    assert.deepEqual(readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), [1, 2, 3]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a damaged line in the middle is refused with the line number', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-anchors-'));
  try {
    const path = join(dir, 'anchors.jsonl');
    writeFileSync(path, `${JSON.stringify(entry(1))}\nnot json\n${JSON.stringify(entry(3))}\n`);
    assert.throws(() => new AnchorLog(path), (e: unknown) => e instanceof BmcError && e.code === 'BMC_STATE' && /line 2/.test(e.message));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
