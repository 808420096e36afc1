// Recall of the image analysis: each test image's workload, run under strace -f inside its
// container, makes only system calls that `vigil analyze` allows for that image. Each list is
// printed with its size beside Docker's default profile (298).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeImage, type AnalysisResult } from '../../src/analysis/index.js';
import { docker, uniqueName } from '../helpers/host.js';
import {
  BUSYBOX_WORKLOAD, IMAGES, PYTHON_WORKLOAD, missingImages, missingStrace, removeContainer, straceArgv, straceBundle,
  tracedSyscalls, waitExit, waitFor, type ImageName,
} from './workloads.js';

const skip = missingImages() ?? missingStrace();
let bundle = '';
let cache = '';
const results = new Map<ImageName, AnalysisResult>();

before(() => {
  if (skip) return;
  bundle = straceBundle();
  cache = mkdtempSync(join(tmpdir(), 'vigil-analysis-cache-'));
});
after(() => {
  if (bundle) rmSync(bundle, { recursive: true, force: true });
  if (cache) rmSync(cache, { recursive: true, force: true });
});

async function listOf(image: ImageName): Promise<AnalysisResult> {
  let r = results.get(image);
  if (!r) {
    r = await analyzeImage(IMAGES[image], { cacheDir: cache });
    results.set(image, r);
    process.stdout.write(`${IMAGES[image]}: ${r.syscalls.length} system calls allowed (Docker's default: 298), ${r.unresolved.length} unresolved sites\n`);
  }
  return r;
}

/** Starts IMAGE with CMD under strace; returns the container name and the trace directory. */
function startTraced(image: ImageName, cmd: string[], extra: string[] = []): { name: string; out: string } {
  const name = uniqueName(`vigil-recall-${image}`);
  const out = mkdtempSync(join(tmpdir(), 'vigil-trace-'));
  chmodSync(out, 0o777); // the redis image runs as user redis
  docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, '--cap-add', 'SYS_PTRACE',
    '-v', `${bundle}:/vigil-strace:ro`, '-v', `${out}:/vigil-trace`, ...extra, IMAGES[image], ...straceArgv('main.trace'), ...cmd);
  return { name, out };
}

function assertRecall(image: ImageName, list: AnalysisResult, out: string): void {
  const traced = tracedSyscalls(out);
  assert.ok(traced.size > 20, `the trace of ${image} names only ${traced.size} system calls: strace did not trace the workload`);
  const allowed = new Set(list.syscalls);
  const missing = [...traced.keys()].filter((s) => !allowed.has(s)).sort();
  process.stdout.write(`${image}: the workload made ${traced.size} distinct system calls, all in the list of ${list.syscalls.length}: ${missing.length === 0}\n`);
  assert.deepEqual(missing, [], `${image}: system calls made by the workload but missing from its allow-list`);
  assert.equal(list.allowAll, false, `${image}: the list is enforceable (no unresolved site reached)`);
}

test('busybox: a shell session of applets uses only allowed system calls', { skip, timeout: 300_000 }, async () => {
  const list = await listOf('busybox');
  const { name, out } = startTraced('busybox', ['/bin/sh', '-c', BUSYBOX_WORKLOAD]);
  try {
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assert.match(docker('logs', name), /workload ok/);
    assertRecall('busybox', list, out);
  } finally {
    removeContainer(name);
    rmSync(out, { recursive: true, force: true });
  }
});

test('nginx: static files, a 404, a reload and a graceful stop use only allowed system calls', { skip, timeout: 300_000 }, async () => {
  const list = await listOf('nginx');
  const { name, out } = startTraced('nginx', ['nginx']);
  try {
    const get = (path: string) => docker('exec', name, 'wget', '-qO-', `http://127.0.0.1:8080${path}`);
    assert.match(await waitFor('nginx', () => get('/')), /vigil-test nginx/);
    assert.equal(get('/hello.txt'), 'vigil-test static file');
    assert.throws(() => get('/missing'), /404/);
    const workers = () => docker('exec', name, 'ps', '-o', 'pid,args').split('\n').filter((l) => l.includes('nginx: worker')).map((l) => l.trim().split(/\s+/)[0]);
    const before = workers();
    // The reload is traced too: `nginx -s reload` reads the pid file and signals the master.
    docker('exec', name, ...straceArgv('reload.trace'), 'nginx', '-s', 'reload');
    await waitFor('a new worker after the reload', () => {
      const now = workers();
      if (now.length === 0 || now.some((p) => before.includes(p))) throw new Error(`workers ${now.join(',')}`);
    });
    for (let i = 0; i < 5; i++) assert.equal(get('/hello.txt'), 'vigil-test static file');
    // A graceful stop, traced: the master tells its worker to finish and exits.
    docker('exec', name, ...straceArgv('quit.trace'), 'nginx', '-s', 'quit');
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assertRecall('nginx', list, out);
  } finally {
    removeContainer(name);
    rmSync(out, { recursive: true, force: true });
  }
});

test('redis: commands, RDB and AOF persistence use only allowed system calls', { skip, timeout: 300_000 }, async () => {
  const list = await listOf('redis');
  const { name, out } = startTraced('redis', ['redis-server', '/etc/redis/redis.conf']);
  try {
    const cli = (...args: string[]) => docker('exec', name, 'redis-cli', ...args);
    await waitFor('redis', () => assert.equal(cli('PING'), 'PONG'));
    assert.equal(cli('SET', 'k', 'v'), 'OK');
    assert.equal(cli('GET', 'k'), 'v');
    cli('INCR', 'n'); cli('LPUSH', 'l', 'a', 'b', 'c'); cli('HSET', 'h', 'f', '1'); cli('EXPIRE', 'k', '100');
    for (let i = 0; i < 50; i++) cli('SET', `key${i}`, 'x'.repeat(100));
    assert.equal(cli('SAVE'), 'OK');
    cli('BGSAVE');
    await waitFor('BGSAVE done', () => assert.match(cli('INFO', 'persistence'), /rdb_bgsave_in_progress:0/));
    cli('BGREWRITEAOF');
    await waitFor('AOF rewrite done', () => assert.match(cli('INFO', 'persistence'), /aof_rewrite_in_progress:0[\s\S]*aof_rewrite_scheduled:0/));
    assert.equal(cli('DBSIZE'), '54');
    // SHUTDOWN saves the RDB once more and exits; the client may see the connection close.
    try { cli('SHUTDOWN', 'SAVE'); } catch { /* connection closed by the exiting server */ }
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assertRecall('redis', list, out);
  } finally {
    removeContainer(name);
    rmSync(out, { recursive: true, force: true });
  }
});

test('python: file, thread and socket work uses only allowed system calls', { skip, timeout: 300_000 }, async () => {
  const list = await listOf('python');
  const { name, out } = startTraced('python', ['python3', '-c', PYTHON_WORKLOAD]);
  try {
    assert.equal(await waitExit(name), 0, docker('logs', name));
    assert.match(docker('logs', name), /workload ok/);
    assertRecall('python', list, out);
  } finally {
    removeContainer(name);
    rmSync(out, { recursive: true, force: true });
  }
});
