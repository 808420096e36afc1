// Corrupt and hostile inputs: each gives a clear error (or warning) naming the file, and never
// a crash, a hang or a write outside the analysis (the reader works in memory: nothing is
// extracted). The tar and ELF readers are fuzzed with random mutations (bounded iterations).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnalysisError, analyzeImage, imageFromArchive, analyzeLoaded, parseElf, readTar, summarize } from '../../src/analysis/index.js';
import { dockerSave, tar } from './tar-writer.js';

// A static x86-64 executable from the host to put in test images (busybox-static, which the
// test images are made of too).
const STATIC = '/bin/busybox';
const skip = existsSync(STATIC) ? undefined : `${STATIC} missing (apt-get install busybox-static)`;

function withArchive<T>(buf: Buffer, fn: (path: string, dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-corrupt-'));
  const path = join(dir, 'image.tar');
  writeFileSync(path, buf);
  return fn(path, dir).finally(() => {
    // The analysis writes nothing beside its input.
    assert.deepEqual(readdirSync(dir), ['image.tar']);
    rmSync(dir, { recursive: true, force: true });
  });
}

function goodLayer(extra: Parameters<typeof tar>[0] = []): Buffer {
  return tar([
    { name: 'bin/', type: '5' },
    { name: 'bin/busybox', data: readFileSync(STATIC) },
    { name: 'bin/sh', type: '2', linkname: 'busybox' },
    ...extra,
  ]);
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<AnalysisError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof AnalysisError, `an AnalysisError, not ${String(e)}`);
    assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected an error matching ${re}`);
}

const opts = { cacheDir: false as const };

test('a valid hand-made docker save archive is analysed', { skip }, async () => {
  await withArchive(dockerSave([goodLayer()], { Cmd: ['/bin/sh'] }), async (path) => {
    const r = await analyzeImage(path, opts);
    assert.ok(r.syscalls.includes('execve') && r.syscalls.includes('openat'));
    assert.equal(r.programs[0]!.path, '/bin/busybox');
  });
});

test('a truncated archive is an error naming the archive and the entry', { skip }, async () => {
  const full = dockerSave([goodLayer()], { Cmd: ['/bin/sh'] });
  await withArchive(full.subarray(0, Math.floor(full.length / 2)), async (path) => {
    const e = await rejects(analyzeImage(path, opts), /truncated/);
    assert.ok(e.message.includes(path), e.message);
    assert.match(e.message, /layer0\/layer\.tar|entry/);
  });
});

test('a bad ELF header is an error naming the file', { skip }, async () => {
  const elf = Buffer.from(readFileSync(STATIC));
  elf.writeBigUInt64LE(0xffffffffn, 32); // e_phoff far outside the file
  const layer = tar([{ name: 'bin/', type: '5' }, { name: 'bin/app', data: elf }]);
  await withArchive(dockerSave([layer], { Entrypoint: ['/bin/app'] }), async (path) => {
    const e = await rejects(analyzeImage(path, opts), /\/bin\/app: program header table at offset 4294967295/);
    assert.ok(e.message.includes(path));
  });
});

test('../ paths in a layer are skipped with a warning; absolute links stay inside the image', { skip }, async () => {
  const layer = goodLayer([
    { name: '../../../tmp/vigil-escape', data: Buffer.from('#!/bin/sh\n') },
    { name: 'bin/../../etc/x', data: Buffer.from('x') },
    // An absolute link resolves inside the image: the host's /usr/bin/node is never read.
    { name: 'bin/node', type: '2', linkname: '/usr/bin/node' },
    { name: 'bin/up', type: '2', linkname: '../../../../bin/busybox' },
  ]);
  await withArchive(dockerSave([layer], { Cmd: ['/bin/up'] }), async (path) => {
    const r = await analyzeImage(path, opts);
    assert.ok(r.warnings.some((w) => w.file.endsWith(':../../../tmp/vigil-escape') && /climbs out/.test(w.message)), JSON.stringify(r.warnings));
    assert.ok(r.warnings.some((w) => w.file.endsWith(':bin/../../etc/x')));
    assert.equal(r.programs[0]!.path, '/bin/busybox', '../ in a link target stops at the image root');
    assert.ok(!existsSync('/tmp/vigil-escape'));
  });
  await withArchive(dockerSave([layer], { Cmd: ['/bin/node'] }), async (path) => {
    await rejects(analyzeImage(path, opts), /\/bin\/node: entrypoint\/cmd: not found|nothing the entrypoint/);
  });
});

test('a symlink loop is an error naming the link, not a hang', { skip }, async () => {
  const layer = goodLayer([{ name: 'bin/a', type: '2', linkname: 'b' }, { name: 'bin/b', type: '2', linkname: '/bin/a' }]);
  await withArchive(dockerSave([layer], { Cmd: ['/bin/a'] }), async (path) => {
    await rejects(analyzeImage(path, opts), /\/bin\/a: too many levels of symbolic links/);
  });
});

test('a huge sparse file and an absurd size are refused without allocating', { skip }, async () => {
  // A header claiming 1 TiB of data that is not there.
  const lying = tar([{ name: 'bin/huge', data: Buffer.alloc(0), claimedSize: 2 ** 40 }]);
  await withArchive(dockerSave([goodLayer(), lying], { Cmd: ['/bin/sh'] }), async (path) => {
    await rejects(analyzeImage(path, opts), /bin\/huge.*truncated \(needs 1099511627776 bytes/);
  });
  // A GNU sparse entry (what `tar --sparse` writes for a huge file of holes): kept by name only.
  const sparse = tar([{ name: 'var/sparse.img', type: 'S', data: Buffer.alloc(512), claimedSize: 512 }]);
  await withArchive(dockerSave([goodLayer(), sparse], { Cmd: ['/bin/sh'] }), async (path) => {
    const r = await analyzeImage(path, opts);
    assert.ok(r.warnings.some((w) => w.file.endsWith(':var/sparse.img') && /sparse file/.test(w.message)));
  });
});

test('device files are names only; whiteouts and opaque directories apply in order', { skip }, async () => {
  const lower = goodLayer([{ name: 'dev/', type: '5' }, { name: 'dev/sda', type: '3' }, { name: 'opt/', type: '5' }, { name: 'opt/tool', data: readFileSync(STATIC) }, { name: 'bin/gone', type: '2', linkname: 'busybox' }]);
  const upper = tar([{ name: 'bin/.wh.gone' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/new', type: '2', linkname: '/bin/busybox' }]);
  const img = imageFromArchive(dockerSave([lower, upper], { Entrypoint: ['/dev/sda'] }), 'fixture');
  await assert.rejects(async () => analyzeLoaded(img, opts), /nothing the entrypoint\/cmd starts is an ELF file/);
  const all = analyzeLoaded(imageFromArchive(dockerSave([lower, upper], { Cmd: ['/bin/sh'] }), 'fixture'), { ...opts, allElf: true });
  assert.deepEqual(all.programs.map((p) => p.path), ['/bin/busybox'], 'opt/tool is hidden by the opaque directory');
  await assert.rejects(async () => analyzeLoaded(imageFromArchive(dockerSave([lower, upper], { Cmd: ['/bin/gone'] }), 'fixture'), opts), /not found/);
  assert.equal(analyzeLoaded(imageFromArchive(dockerSave([lower, upper], { Cmd: ['/opt/new'] }), 'fixture'), opts).programs[0]!.path, '/bin/busybox');
});

/** A small deterministic generator, so a failing mutation can be replayed from its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('fuzz: mutated tar archives give AnalysisErrors or entries, never anything else', { skip }, () => {
  const base = dockerSave([tar([{ name: 'etc/', type: '5' }, { name: 'etc/passwd', data: Buffer.from('root:x:0:0::/:/bin/sh\n') }, { name: 'bin/sh', type: '2', linkname: 'busybox' }])], { Cmd: ['/bin/sh'] });
  const rand = rng(12);
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(base);
    const n = 1 + Math.floor(rand() * 8);
    for (let k = 0; k < n; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    try {
      for (const e of readTar(cut, `mutation ${i}`)) void e.data.length;
      imageFromArchive(cut, `mutation ${i}`);
    } catch (e) {
      assert.ok(e instanceof AnalysisError, `mutation ${i}: ${(e as Error).stack}`);
      assert.match(e.message, new RegExp(`^mutation ${i}`));
    }
  }
});

test('fuzz: mutated ELF files give ElfErrors or summaries, never anything else', { skip }, () => {
  const host = readFileSync('/bin/true'); // small, dynamic: headers, dynamic section, symbols, relocations
  const rand = rng(7);
  for (let i = 0; i < 150; i++) {
    const b = Buffer.from(host);
    const n = 1 + Math.floor(rand() * 6);
    for (let k = 0; k < n; k++) {
      // Mostly the headers and tables, where a reader trusts offsets and counts.
      const at = rand() < 0.7 ? Math.floor(rand() * 64) : Math.floor(rand() * b.length);
      b[at] = Math.floor(rand() * 256);
    }
    const cut = rand() < 0.2 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    try {
      const elf = parseElf(cut, `mutation ${i}`);
      if (elf.x86_64) summarize(elf, new Map([['syscall', 'rdi']]));
    } catch (e) {
      assert.ok(e instanceof AnalysisError, `mutation ${i}: ${(e as Error).stack}`);
      assert.match(e.message, new RegExp(`^mutation ${i}`));
    }
  }
});
