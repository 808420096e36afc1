// The exported seccomp profiles in use: each image's workload keeps working under
// `docker run --security-opt seccomp=PROFILE`, and a binary copied in at run time that calls
// ptrace, mount and keyctl (none of which the image's programs make) gets EPERM for each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeImage, seccompProfile, type AnalysisResult } from '../../src/analysis/index.js';
import { docker, uniqueName } from '../helpers/host.js';
import { BUSYBOX_WORKLOAD, IMAGES, PYTHON_WORKLOAD, missingImages, removeContainer, waitExit, waitFor, type ImageName } from './workloads.js';

const skip = missingImages();
const fixtureSource = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'analysis', 'fixtures', 'forbidden.c');
let work = '';
const profiles = new Map<ImageName, { file: string; result: AnalysisResult }>();

before(() => {
  if (!skip) work = mkdtempSync(join(tmpdir(), 'vigil-seccomp-'));
});
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

async function profileOf(image: ImageName): Promise<{ file: string; result: AnalysisResult }> {
  let p = profiles.get(image);
  if (!p) {
    const result = await analyzeImage(IMAGES[image], { cacheDir: join(work, 'cache') });
    const file = join(work, `${image}.json`);
    const profile = seccompProfile(result);
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.deepEqual(profile.syscalls[0]!.names, result.syscalls);
    writeFileSync(file, JSON.stringify(profile));
    p = { file, result };
    profiles.set(image, p);
    process.stdout.write(`${IMAGES[image]}: profile allows ${result.syscalls.length} system calls (Docker's default: 298)\n`);
  }
  return p;
}

function runUnder(image: ImageName, file: string, cmd: string[], extra: string[] = []): string {
  const name = uniqueName(`vigil-seccomp-${image}`);
  docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, '--security-opt', `seccomp=${file}`, ...extra, IMAGES[image], ...cmd);
  return name;
}

test('busybox: the shell session works under the exported profile', { skip, timeout: 300_000 }, async () => {
  const { file } = await profileOf('busybox');
  const name = runUnder('busybox', file, ['/bin/sh', '-c', BUSYBOX_WORKLOAD]);
  try {
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assert.match(docker('logs', name), /workload ok/);
  } finally {
    removeContainer(name);
  }
});

test('nginx: serving, reload and stop work under the exported profile', { skip, timeout: 300_000 }, async () => {
  const { file } = await profileOf('nginx');
  const name = runUnder('nginx', file, ['nginx']);
  try {
    // wget and ps are busybox applets in the nginx image: outside nginx's list, so the checks
    // run from a second container (default profile) in the same network namespace.
    const client = (...args: string[]) => docker('run', '--rm', '--pull', 'never', '--network', `container:${name}`, IMAGES.nginx, ...args);
    assert.match(await waitFor('nginx', () => client('wget', '-qO-', 'http://127.0.0.1:8080/')), /vigil-test nginx/);
    assert.equal(client('wget', '-qO-', 'http://127.0.0.1:8080/hello.txt'), 'vigil-test static file');
    // docker top reads the processes from the host, so nothing runs in the container for it.
    const workers = () => docker('top', name).split('\n').filter((l) => l.includes('nginx: worker')).map((l) => l.trim().split(/\s+/)[1]);
    const before = workers();
    docker('exec', name, 'nginx', '-s', 'reload');
    await waitFor('a new worker after the reload', () => {
      const now = workers();
      if (now.length === 0 || now.some((p) => before.includes(p))) throw new Error(`workers ${now.join(',')}`);
    });
    assert.equal(client('wget', '-qO-', 'http://127.0.0.1:8080/hello.txt'), 'vigil-test static file');
    docker('exec', name, 'nginx', '-s', 'quit');
    assert.equal(await waitExit(name), 0, docker('logs', name));
  } finally {
    removeContainer(name);
  }
});

test('redis: commands and persistence work under the exported profile', { skip, timeout: 300_000 }, async () => {
  const { file } = await profileOf('redis');
  const name = runUnder('redis', file, ['redis-server', '/etc/redis/redis.conf']);
  try {
    // Only redis-server is the image's cmd, so redis-cli is outside its list: the client runs
    // in a second container (default profile) sharing the network namespace.
    const cli = (...args: string[]) => docker('run', '--rm', '--pull', 'never', '--network', `container:${name}`, IMAGES.redis, 'redis-cli', ...args);
    await waitFor('redis', () => assert.equal(cli('PING'), 'PONG'));
    assert.equal(cli('SET', 'k', 'v'), 'OK');
    assert.equal(cli('GET', 'k'), 'v');
    assert.equal(cli('SAVE'), 'OK');
    cli('BGSAVE');
    await waitFor('BGSAVE done', () => assert.match(cli('INFO', 'persistence'), /rdb_bgsave_in_progress:0[\s\S]*rdb_last_bgsave_status:ok/));
    cli('BGREWRITEAOF');
    await waitFor('AOF rewrite done', () => assert.match(cli('INFO', 'persistence'), /aof_rewrite_in_progress:0[\s\S]*aof_last_bgrewrite_status:ok/));
    try { cli('SHUTDOWN', 'SAVE'); } catch { /* the connection closes as the server exits */ }
    assert.equal(await waitExit(name), 0, docker('logs', name));
  } finally {
    removeContainer(name);
  }
});

test('python: the file, thread and socket program works under the exported profile', { skip, timeout: 300_000 }, async () => {
  const { file } = await profileOf('python');
  const name = runUnder('python', file, ['python3', '-c', PYTHON_WORKLOAD]);
  try {
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assert.match(docker('logs', name), /workload ok/);
  } finally {
    removeContainer(name);
  }
});

const noGcc = spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'gcc is not installed (needed for the static fixture)';

test('a binary copied in at run time gets EPERM for ptrace, mount and keyctl under the profile', { skip: skip ?? noGcc, timeout: 300_000 }, async () => {
  const { file, result } = await profileOf('nginx');
  for (const s of ['ptrace', 'mount', 'keyctl']) assert.ok(!result.syscalls.includes(s), `${s} is not in nginx's list`);
  const bin = join(work, 'forbidden');
  execFileSync('gcc', ['-static', '-O2', '-o', bin, fixtureSource]);
  // SYS_ADMIN so that mount would succeed but for the profile; the baseline shows it does.
  const extra = ['--cap-add', 'SYS_ADMIN'];
  const name = runUnder('nginx', file, ['nginx'], extra);
  const baseline = uniqueName('vigil-seccomp-baseline');
  try {
    await waitFor('nginx running', () => assert.equal(docker('inspect', '-f', '{{.State.Running}}', name), 'true'));
    docker('cp', bin, `${name}:/tmp/forbidden`);
    const out = docker('exec', name, '/tmp/forbidden');
    assert.match(out, /^ptrace=-1 EPERM$/m);
    assert.match(out, /^mount=-1 EPERM$/m);
    assert.match(out, /^keyctl=-1 EPERM$/m);
    // Without the profile (and without Docker's, which refuses mount and keyctl too) the calls go through.
    docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', baseline, '--security-opt', 'seccomp=unconfined', ...extra, IMAGES.nginx, 'nginx');
    await waitFor('baseline running', () => assert.equal(docker('inspect', '-f', '{{.State.Running}}', baseline), 'true'));
    docker('cp', bin, `${baseline}:/tmp/forbidden`);
    const free = docker('exec', baseline, '/tmp/forbidden');
    assert.match(free, /^ptrace=0$/m);
    assert.match(free, /^mount=0$/m);
    assert.doesNotMatch(free, /^keyctl=-1 EPERM$/m);
  } finally {
    removeContainer(name);
    removeContainer(baseline);
  }
});
