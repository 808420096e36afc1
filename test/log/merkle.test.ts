// RFC 6962 Merkle hashing and proofs: every vector of test/fixtures/rfc6962 (from
// transparency-dev/merkle, Apache-2.0) gives exactly its wantErr, and the proofs this
// library generates are the ones the happy-path vectors carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompactRange, EMPTY_ROOT, consistencyProof, inclusionProof, leafHash, rootOf,
  verifyConsistency, verifyInclusion, verifySubtreeConsistency, verifySubtreeInclusion,
} from '../../src/log/index.js';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../test/fixtures/rfc6962');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.json') ? [p] : [];
  });
}

type Vector = Record<string, unknown>;
/** Integers beyond 2^53 (the vectors have 2^63-sized trees) are read as BigInt. */
function load(path: string): Vector {
  const text = readFileSync(path, 'utf8').replace(/:\s*(\d{16,})/g, ': "$1n"');
  return JSON.parse(text, (_k, v: unknown) => (typeof v === 'string' && /^\d+n$/.test(v) ? BigInt(v.slice(0, -1)) : v)) as Vector;
}
const b64 = (v: unknown): Buffer => Buffer.from(String(v ?? ''), 'base64');
const proofOf = (v: Vector): Buffer[] => ((v.proof as string[] | null) ?? []).map(b64);
const int = (v: unknown): number | bigint => (typeof v === 'bigint' ? v : Number(v));

function outcome(fn: () => void): boolean {
  try { fn(); return false; } catch { return true; }
}

const kinds: Record<string, (v: Vector) => void> = {
  inclusion: (v) => verifyInclusion(int(v.leafIdx), int(v.treeSize), b64(v.leafHash), proofOf(v), b64(v.root)),
  consistency: (v) => verifyConsistency(int(v.size1), int(v.size2), proofOf(v), b64(v.root1), b64(v.root2)),
  subtreeinclusion: (v) => verifySubtreeInclusion(int(v.leafIdx), int(v.start), int(v.end), b64(v.leafHash), proofOf(v), b64(v.root)),
  subtreeconsistency: (v) => verifySubtreeConsistency(int(v.start), int(v.end), int(v.size), proofOf(v), b64(v.root1), b64(v.root2)),
};

for (const [kind, check] of Object.entries(kinds)) {
  test(`RFC 6962 vectors: ${kind}`, () => {
    const all = files(join(FIXTURES, kind));
    assert.ok(all.length > 20, `vectors of ${kind} found in ${FIXTURES}`);
    const wrong: string[] = [];
    let happy = 0;
    for (const f of all) {
      const v = load(f);
      if (v.wantErr === false) happy++;
      if (outcome(() => check(v)) !== v.wantErr) wrong.push(`${f.slice(FIXTURES.length + 1)} (wantErr ${String(v.wantErr)})`);
    }
    assert.deepEqual(wrong, [], `${wrong.length} of ${all.length} vectors`);
    assert.ok(happy > 0);
  });
}

// The leaves of RFC 6962's own test data, whose tree of 8 the vectors' roots are.
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => leafHash(Buffer.from(h, 'hex')));
const leavesFor = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => LEAVES[i % 8] as Buffer);

test('generated proofs equal the happy-path vectors', () => {
  let compared = 0;
  for (const f of files(join(FIXTURES, 'inclusion'))) {
    const v = load(f);
    if (v.wantErr !== false || typeof v.treeSize !== 'number' || v.treeSize > 8 || !/^\d$/.test(f.split('/').at(-2) ?? '')) continue;
    const leaves = leavesFor(v.treeSize);
    if (!rootOf(leaves).equals(b64(v.root))) continue;
    assert.deepEqual(inclusionProof(leaves, Number(v.leafIdx)).map((p) => p.toString('base64')), (v.proof as string[] | null) ?? [], f);
    compared++;
  }
  for (const f of files(join(FIXTURES, 'consistency'))) {
    const v = load(f);
    if (v.wantErr !== false || typeof v.size2 !== 'number' || v.size2 > 8 || Number(v.size1) === 0) continue;
    const leaves = leavesFor(v.size2);
    if (!rootOf(leaves).equals(b64(v.root2))) continue;
    assert.deepEqual(consistencyProof(leaves, Number(v.size1)).map((p) => p.toString('base64')), (v.proof as string[] | null) ?? [], f);
    compared++;
  }
  assert.ok(compared >= 8, `compared ${compared} generated proofs`);
});

test('every proof of trees up to 40 leaves verifies, and a flipped bit fails', () => {
  const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
  const range = new CompactRange();
  const roots = [EMPTY_ROOT];
  for (const l of leaves) { range.append(l); roots.push(range.root()); }
  for (let n = 1; n <= 40; n++) {
    assert.ok(roots[n]?.equals(rootOf(leaves, 0, n)), `compact range root of ${n}`);
    const restored = CompactRange.restore(n, CompactRange.restore(n, rootsState(leaves, n)).state());
    assert.ok(restored.root().equals(roots[n] as Buffer));
    for (let i = 0; i < n; i++) {
      const p = inclusionProof(leaves, i, n);
      verifyInclusion(i, n, leaves[i] as Buffer, p, roots[n] as Buffer);
      if (p.length > 0) {
        const bad = p.map((h) => Buffer.from(h));
        (bad[0] as Buffer)[0] ^= 1;
        assert.throws(() => verifyInclusion(i, n, leaves[i] as Buffer, bad, roots[n] as Buffer));
      }
    }
    for (let m = 1; m <= n; m++) {
      const p = consistencyProof(leaves, m, n);
      verifyConsistency(m, n, p, roots[m] as Buffer, roots[n] as Buffer);
      if (m < n) assert.throws(() => verifyConsistency(m, n, p, roots[m] as Buffer, roots[n - 1] as Buffer));
    }
  }
});

function rootsState(leaves: Buffer[], n: number): Buffer[] {
  const r = new CompactRange();
  for (const l of leaves.slice(0, n)) r.append(l);
  return r.state();
}
