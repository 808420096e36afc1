// The workload images (scripts/build-test-images.sh) do their ordinary work: nginx serves
// static files, redis answers and persists, python does file I/O, threads and sockets. The
// noise-budget tests rely on these workloads running as they would in production.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { docker, missingWorkloadImages, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';

const skip = missingWorkloadImages();
const READY_MS = 60_000;

/** Polls `probe` until it returns without throwing; its value, or the last error after READY_MS. */
async function waitFor<T>(what: string, probe: () => T): Promise<T> {
  const deadline = Date.now() + READY_MS;
  for (;;) {
    try {
      return probe();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: not ready after ${READY_MS} ms: ${(e as Error).message}`);
    }
    await delay(100);
  }
}

function removeContainer(name: string): void {
  try {
    docker('rm', '-f', '-v', name);
  } catch {
    // never started, or already gone
  }
}

function ipOf(name: string): string {
  const ip = docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name);
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `${name} has an address on the default bridge`);
  return ip;
}

test('nginx serves /srv/www on 8080, master as root and one worker as www-data', { skip }, async () => {
  const name = uniqueName('vigil-nginx');
  const client = uniqueName('vigil-nginx-client');
  try {
    docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, WORKLOAD_IMAGES.nginx);
    const page = await waitFor('nginx', () => docker('exec', name, 'wget', '-qO-', 'http://127.0.0.1:8080/'));
    assert.match(page, /<h1>vigil-test nginx<\/h1>/);
    assert.equal(docker('exec', name, 'wget', '-qO-', 'http://127.0.0.1:8080/hello.txt'), 'vigil-test static file');
    assert.throws(() => docker('exec', name, 'wget', '-qO-', 'http://127.0.0.1:8080/missing'), /404/);

    const procs = docker('exec', name, 'ps', '-o', 'user,args').split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const master = procs.filter(([, ...args]) => args.join(' ').startsWith('nginx: master'));
    const workers = procs.filter(([, ...args]) => args.join(' ').startsWith('nginx: worker'));
    assert.deepEqual(master.map(([user]) => user), ['root']);
    assert.deepEqual(workers.map(([user]) => user), ['www-data']);

    // Another container on the default bridge reaches it by address.
    const body = docker('run', '--rm', '--pull', 'never', '--name', client, WORKLOAD_IMAGES.nginx, 'wget', '-qO-', `http://${ipOf(name)}:8080/hello.txt`);
    assert.equal(body, 'vigil-test static file');

    // The access log goes to the container's stdout.
    const logs = await waitFor('access log', () => {
      const out = docker('logs', name);
      assert.match(out, /"GET \/hello\.txt HTTP\/1\.1" 200/);
      return out;
    });
    assert.match(logs, /"GET \/missing HTTP\/1\.1" 404/);
  } finally {
    removeContainer(client);
    removeContainer(name);
  }
});

test('redis answers PING, SET/GET, saves with BGSAVE and keeps its data over a restart', { skip }, async () => {
  const name = uniqueName('vigil-redis');
  const client = uniqueName('vigil-redis-client');
  const cli = (...args: string[]) => docker('exec', name, 'redis-cli', ...args);
  try {
    docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, WORKLOAD_IMAGES.redis);
    await waitFor('redis', () => assert.equal(cli('ping'), 'PONG'));
    assert.equal(docker('exec', name, 'id', '-un'), 'redis');
    assert.deepEqual(cli('config', 'get', 'appendonly').split('\n'), ['appendonly', 'yes']);
    assert.deepEqual(cli('config', 'get', 'dir').split('\n'), ['dir', '/data']);

    assert.equal(cli('set', 'vigil:key', 'a value'), 'OK');
    assert.equal(cli('get', 'vigil:key'), 'a value');
    assert.equal(cli('incrby', 'vigil:counter', '41'), '41');
    assert.equal(cli('incr', 'vigil:counter'), '42');

    const before = Number(cli('lastsave'));
    assert.match(cli('bgsave'), /Background saving started/);
    await waitFor('BGSAVE', () => {
      const info = cli('info', 'persistence');
      assert.match(info, /rdb_bgsave_in_progress:0/);
      assert.match(info, /rdb_last_bgsave_status:ok/);
      assert.ok(Number(cli('lastsave')) >= before);
      assert.match(info, /rdb_changes_since_last_save:0/);
    });
    docker('exec', name, 'test', '-s', '/data/dump.rdb');
    docker('exec', name, 'test', '-s', '/data/appendonlydir/appendonly.aof.manifest');

    // Another container on the default bridge reaches it by address.
    assert.equal(docker('run', '--rm', '--pull', 'never', '--name', client, WORKLOAD_IMAGES.redis, 'redis-cli', '-h', ipOf(name), 'get', 'vigil:key'), 'a value');

    docker('restart', name);
    await waitFor('redis after restart', () => assert.equal(cli('ping'), 'PONG'));
    assert.equal(cli('get', 'vigil:key'), 'a value');
    assert.equal(cli('get', 'vigil:counter'), '42');
  } finally {
    removeContainer(client);
    removeContainer(name);
  }
});

// File I/O, threads, and a TCP echo over 127.0.0.1; prints one JSON line of what it saw.
const PYTHON_SCRIPT = String.raw`
import hashlib, json, os, socket, sys, tempfile, threading

result = {"executable": sys.executable, "version": sys.version.split()[0]}

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "data.bin")
    data = os.urandom(1 << 20)
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        result["file_ok"] = hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    os.rename(path, path + ".old")
    result["listing"] = sorted(os.listdir(d))

totals = [0] * 4
def work(i):
    totals[i] = sum(range(i * 100000, (i + 1) * 100000))
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
result["threads_ok"] = sum(totals) == sum(range(400000))

server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
def echo():
    conn, _ = server.accept()
    with conn:
        while chunk := conn.recv(4096):
            conn.sendall(chunk)
threading.Thread(target=echo, daemon=True).start()
with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
    message = b"vigil echo " * 1000
    c.sendall(message)
    c.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := c.recv(4096):
        received += chunk
result["echo_ok"] = received == message
print(json.dumps(result))
`;

test('python runs a script doing file I/O, threads and a TCP echo on 127.0.0.1', { skip }, () => {
  const name = uniqueName('vigil-python');
  try {
    const out = docker('run', '--rm', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, WORKLOAD_IMAGES.python, 'python3', '-c', PYTHON_SCRIPT);
    const result = JSON.parse(out) as Record<string, unknown>;
    assert.deepEqual(result, {
      executable: '/usr/bin/python3',
      version: result.version,
      file_ok: true,
      listing: ['data.bin.old'],
      threads_ok: true,
      echo_ok: true,
    });
    assert.match(String(result.version), /^3\.11\./);
    // The standard library's compiled modules load, with their libraries.
    docker('run', '--rm', '--pull', 'never', '--name', name, WORKLOAD_IMAGES.python, 'python3', '-c',
      'import ssl, sqlite3, ctypes, decimal, lzma, bz2, zlib, uuid, json, asyncio, multiprocessing, zoneinfo');
  } finally {
    removeContainer(name);
  }
});
