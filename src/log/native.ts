// Loads the verifier's optional native helper (src/log/native/chain.c, built by
// `make -C src/log/native`) through koffi. It is a speed-up only: when it is missing, or
// does not pass its self-check, or VIGIL_LOG_NATIVE=0, the verifier does the same checks in
// TypeScript (verify.ts).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type { CompactRange } from './merkle.js';
import { ZERO_HASH, chainLine } from './chain.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NATIVE_LIBRARY = join(repoRoot, 'src', 'log', 'native', '.output', 'libvigil-log.so');

export interface NativeRunFrom {
  head: Buffer;
  /** The head's lowercase hex: 64 bytes of headHex from headHexAt. */
  headHex: Buffer;
  headHexAt: number;
  expectSeq: number;
  /** Advanced in place by the lines checked. */
  range: CompactRange;
}

export interface NativeRun {
  /** Entry lines checked (0: the line at `start` is for the TypeScript code). */
  lines: number;
  next: number;
  head: Buffer;
  lastLineCut: number;
  lastTimeFrom: number;
  lastTimeTo: number;
}

export interface NativeChain { run(buf: Buffer, start: number, from: NativeRunFrom): NativeRun }

const STATE_BYTES = 2200;

type RunFn = (buf: Buffer, len: number, start: number, state: Buffer) => number;

let loaded: NativeChain | null | undefined;

/** The helper, or undefined when it is not available. */
export function nativeChain(): NativeChain | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/** Why the helper is not used (for the bench's table), or '' when it is. */
export let nativeUnavailable = '';

function load(): NativeChain | null {
  if (process.env.VIGIL_LOG_NATIVE === '0') { nativeUnavailable = 'VIGIL_LOG_NATIVE=0'; return null; }
  if (!existsSync(NATIVE_LIBRARY)) { nativeUnavailable = `${NATIVE_LIBRARY} not built (make -C src/log/native)`; return null; }
  let fn: RunFn;
  try {
    // koffi is a CommonJS module; loading it lazily keeps the log usable where it is absent.
    const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): { func(sig: string): RunFn } };
    fn = koffi.load(NATIVE_LIBRARY).func('int vigil_log_run(const uint8_t *buf, size_t len, size_t start, uint8_t *state)');
  } catch (e) {
    nativeUnavailable = `cannot load ${NATIVE_LIBRARY}: ${(e as Error).message}`;
    return null;
  }
  const state = Buffer.alloc(STATE_BYTES);
  const chain: NativeChain = {
    run(buf, start, from) {
      from.head.copy(state, 0);
      from.headHex.copy(state, 32, from.headHexAt, from.headHexAt + 64);
      state.writeDoubleLE(from.expectSeq, 96);
      state.writeDoubleLE(from.range.size, 104);
      from.range.writeState(state, 112);
      fn(buf, buf.length, start, state);
      const lines = state.readDoubleLE(2160);
      if (lines > 0) from.range.readState(state.readDoubleLE(104), state, 112);
      return {
        lines, next: state.readDoubleLE(2168), head: Buffer.from(state.subarray(0, 32)), lastLineCut: state.readDoubleLE(2176),
        lastTimeFrom: state.readDoubleLE(2184), lastTimeTo: state.readDoubleLE(2192),
      };
    },
  };
  // Self-check: two entries the writer's own code chained must pass, with the hashes it gave.
  try {
    const a = chainLine('{"seq":1,"time":"5","host":"h","kind":"file"}', ZERO_HASH);
    const b = chainLine('{"seq":2,"time":"6","host":"h\\"x","kind":"file"}', a.hash);
    const buf = Buffer.from(a.line + b.line);
    // A range stand-in: only size, writeState and readState are used.
    let size = 0;
    const range = { get size() { return size; }, writeState: () => 0, readState: (n: number) => { size = n; } } as unknown as CompactRange;
    const r = chain.run(buf, 0, { head: ZERO_HASH, headHex: Buffer.from(ZERO_HASH.toString('hex')), headHexAt: 0, expectSeq: 1, range });
    if (r.lines !== 2 || r.next !== buf.length || !r.head.equals(b.hash) || size !== 2) throw new Error(`checked ${r.lines} of 2 entries`);
  } catch (e) {
    nativeUnavailable = `${NATIVE_LIBRARY} fails its self-check: ${(e as Error).message}`;
    return null;
  }
  return chain;
}
