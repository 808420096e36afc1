// `vigil analyze`: its output formats, the seccomp file, the three image forms (Engine API
// export, `docker save` archive, OCI layout as a directory and as a tar) giving the same
// answer, the caches, and --all-elf.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SYSCALL_NAMES_X86_64 } from '../../src/events/syscall-table.js';
import { analyzeImage, imageFromArchive, readTar } from '../../src/analysis/index.js';
import { runVigil } from '../helpers/agent-process.js';
import { IMAGES, missingImages } from './workloads.js';
import { tar } from './tar-writer.js';

const skip = missingImages();
let work = '';
let cache = '';
before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'vigil-analyze-cli-'));
  cache = join(work, 'cache');
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('--format json has image, syscalls, numbers, unresolved and sources; --seccomp writes a profile', { skip, timeout: 180_000 }, async () => {
  const profile = join(work, 'busybox.json');
  const r = await runVigil(['analyze', IMAGES.busybox, '--format', 'json', '--cache', cache, '--seccomp', profile], 170_000);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { image: { id: string }; syscalls: string[]; numbers: number[]; unresolved: unknown[]; sources: Record<string, { file: string; reason: string }[]> };
  assert.match(j.image.id, /^sha256:[0-9a-f]{64}$/);
  assert.equal(j.image.id, execFileSync('docker', ['image', 'inspect', '-f', '{{.Id}}', IMAGES.busybox], { encoding: 'utf8' }).trim());
  assert.deepEqual([...j.syscalls].sort(), j.syscalls);
  assert.deepEqual(j.numbers.map((n) => SYSCALL_NAMES_X86_64[n]).sort(), j.syscalls);
  assert.ok(Array.isArray(j.unresolved));
  for (const s of j.syscalls) assert.ok((j.sources[s] ?? []).length > 0, `${s} has a source`);
  assert.ok(j.sources['execve']!.some((s) => s.file === '(container runtime)'));
  assert.ok(j.sources['openat']!.some((s) => s.file === '/bin/busybox'));
  const p = JSON.parse(readFileSync(profile, 'utf8')) as { defaultAction: string; architectures: string[]; syscalls: { names: string[]; action: string }[] };
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64']);
  assert.deepEqual(p.syscalls[0]!.names, j.syscalls);
  assert.equal(p.syscalls[0]!.action, 'SCMP_ACT_ALLOW');

  const text = await runVigil(['analyze', IMAGES.busybox, '--cache', cache], 60_000);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^${j.syscalls.length} system calls allowed \\(Docker's default profile allows 298\\)$`, 'm'));
  assert.match(text.stdout, /^ {2}\/bin\/busybox {2}\(entrypoint\/cmd/m);
});

test('a docker save archive and an OCI layout (directory and tar) give the same list as the Engine API', { skip, timeout: 300_000 }, async () => {
  const fromApi = await analyzeImage(IMAGES.nginx, { cacheDir: cache });
  const saved = join(work, 'nginx-save.tar');
  execFileSync('docker', ['save', '-o', saved, IMAGES.nginx]);
  const fromSave = await analyzeImage(saved, { cacheDir: cache });
  assert.equal(fromSave.image.id, fromApi.image.id);
  assert.deepEqual(fromSave.syscalls, fromApi.syscalls);

  // An OCI layout with gzip-compressed layers, built from the saved image.
  const img = imageFromArchive(readFileSync(saved), saved);
  const layout = join(work, 'oci');
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const blob = (data: Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(layout, 'blobs', 'sha256', hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const files = new Map<string, Buffer>();
  for (const e of readTar(readFileSync(saved), saved)) if (e.type === 'file') files.set(e.name, e.data);
  const manifestList = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string }[];
  const config = blob(files.get(manifestList[0]!.Config)!);
  const layers = img.layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(gzipSync(l.tar)) }));
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers })));
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { architecture: 'amd64', os: 'linux' } }] }));
  const fromDir = await analyzeImage(layout, { cacheDir: cache });
  assert.equal(fromDir.image.id, fromApi.image.id);
  assert.deepEqual(fromDir.syscalls, fromApi.syscalls);

  const ociTar = join(work, 'nginx-oci.tar');
  const entries = [{ name: 'oci-layout', data: readFileSync(join(layout, 'oci-layout')) }, { name: 'index.json', data: readFileSync(join(layout, 'index.json')) }];
  for (const d of [config, manifest, ...layers]) entries.push({ name: `blobs/sha256/${d.digest.slice(7)}`, data: readFileSync(join(layout, 'blobs', 'sha256', d.digest.slice(7))) });
  writeFileSync(ociTar, tar(entries.map((e) => ({ ...e, mode: 0o644 }))));
  const fromOciTar = await analyzeImage(ociTar, { cacheDir: cache });
  assert.deepEqual(fromOciTar.syscalls, fromApi.syscalls);
});

test('a second analysis of the same image is answered from the cache; --all-elf gives a superset', { skip, timeout: 300_000 }, async () => {
  const first = await analyzeImage(IMAGES.nginx, { cacheDir: cache });
  const again = await analyzeImage(IMAGES.nginx, { cacheDir: cache });
  assert.equal(again.stats.imageCached, true);
  assert.deepEqual(again.syscalls, first.syscalls);
  // The per-file cache: a fresh image-level key (all-ELF) still reuses the file summaries.
  const all = await analyzeImage(IMAGES.nginx, { cacheDir: cache, allElf: true });
  assert.ok(all.stats.cachedFiles > 0, 'file summaries reused');
  for (const s of first.syscalls) assert.ok(all.syscalls.includes(s), `${s} in the all-ELF list`);
  assert.ok(all.programs.some((p) => p.path === '/bin/busybox'), 'busybox (for docker exec) is an ELF of the nginx image');
});

test('an image that does not exist is a clear error with exit code 1', { skip, timeout: 60_000 }, async () => {
  const r = await runVigil(['analyze', 'vigil-test/no-such-image:0', '--cache', cache]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /vigil analyze: vigil-test\/no-such-image:0: Docker cannot export this image/);
  const bad = await runVigil(['analyze', IMAGES.busybox, '--format', 'yaml']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--format: must be text or json/);
});
