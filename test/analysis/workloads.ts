// The realistic workloads of the analysis tests, and a way to trace them with strace inside
// their container. strace is the host's own (Debian's package), bind-mounted read-only with
// the libraries it needs and started through its own loader (`ld.so --library-path`), so
// nothing in the image changes and no environment variable leaks into the workload; it runs
// as the container's first process, so it sees every system call of the workload from its
// first execve on, threads and children included (-f).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { docker } from '../helpers/host.js';

export const IMAGES = {
  busybox: 'vigil-test/busybox:1',
  nginx: 'vigil-test/nginx:1',
  redis: 'vigil-test/redis:1',
  python: 'vigil-test/python:1',
} as const;
export type ImageName = keyof typeof IMAGES;

export function missingImages(): string | undefined {
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0) return 'no Docker engine answers (run scripts/bootstrap.sh)';
  for (const image of Object.values(IMAGES)) {
    if (spawnSync('docker', ['image', 'inspect', image], { stdio: 'ignore' }).status !== 0) return `image ${image} missing (run scripts/build-test-images.sh)`;
  }
  return undefined;
}

export function missingStrace(): string | undefined {
  return existsSync('/usr/bin/strace') ? undefined : 'strace is not installed (apt-get install strace)';
}

/** A directory with strace, its libraries and the loader; mount it at /vigil-strace. */
export function straceBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-strace-'));
  mkdirSync(join(dir, 'lib'));
  copyFileSync('/usr/bin/strace', join(dir, 'strace'));
  const ldd = execFileSync('ldd', ['/usr/bin/strace'], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(\/\S+)/g)) {
    const lib = m[1]!;
    if (!existsSync(lib)) continue;
    copyFileSync(lib, join(dir, 'lib', basename(lib)));
    if (basename(lib).startsWith('ld-linux')) copyFileSync(lib, join(dir, 'ld.so'));
  }
  for (const f of ['strace', 'ld.so']) chmodSync(join(dir, f), 0o755);
  chmodSync(dir, 0o755);
  return dir;
}

/** The argv prefix that runs the bundle's strace inside a container. */
export function straceArgv(out: string): string[] {
  return ['/vigil-strace/ld.so', '--library-path', '/vigil-strace/lib', '/vigil-strace/strace', '-f', '-qq', '-o', `/vigil-trace/${out}`, '--'];
}

/** The system calls named in strace -f output files (resumed and unfinished calls too). */
export function tracedSyscalls(dir: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.trace')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const m = /^\d+\s+(?:<\.\.\. ([a-z0-9_]+) resumed>|([a-z0-9_]+)\()/.exec(line);
      const name = m?.[1] ?? m?.[2];
      if (name) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  }
  return counts;
}

export async function waitFor<T>(what: string, probe: () => T, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return probe();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: not ready after ${ms} ms: ${(e as Error).message}`);
    }
    await delay(150);
  }
}

export function removeContainer(name: string): void {
  spawnSync('docker', ['rm', '-f', '-v', name], { stdio: 'ignore' });
}

/** Waits until the container has exited (bounded), and returns its exit code. */
export async function waitExit(name: string, ms = 60_000): Promise<number> {
  return waitFor(`${name} exits`, () => {
    const running = docker('inspect', '-f', '{{.State.Running}}', name);
    if (running !== 'false') throw new Error('still running');
    return Number(docker('inspect', '-f', '{{.State.ExitCode}}', name));
  }, ms);
}

/** A Python program with file, thread and socket work; prints "workload ok" at the end. */
export const PYTHON_WORKLOAD = String.raw`
import os, socket, threading, tempfile, json, hashlib, time, selectors, concurrent.futures as cf
d = tempfile.mkdtemp()
for i in range(20):
    p = os.path.join(d, f"f{i}.json")
    with open(p, "w") as f:
        json.dump({"i": i, "h": hashlib.sha256(str(i).encode()).hexdigest()}, f)
    os.rename(p, p + ".done")
names = sorted(os.listdir(d))
with open(os.path.join(d, names[0])) as f:
    assert json.load(f)["i"] == 0
def work(n):
    with open(os.path.join(d, f"t{n}"), "wb") as f:
        f.write(os.urandom(4096)); f.flush(); os.fsync(f.fileno())
    return os.stat(os.path.join(d, f"t{n}")).st_size
with cf.ThreadPoolExecutor(4) as ex:
    assert sum(ex.map(work, range(8))) == 8 * 4096
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(8)
port = srv.getsockname()[1]
def serve():
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ)
    for _ in range(3):
        sel.select(timeout=10)
        c, _ = srv.accept()
        data = c.recv(1024)
        c.sendall(data.upper()); c.close()
t = threading.Thread(target=serve); t.start()
for i in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"hello %d" % i)
    assert s.recv(1024) == b"HELLO %d" % i
    s.close()
t.join()
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.sendto(b"ping", u1.getsockname())
assert u1.recvfrom(16)[0] == b"ping"
a, b = socket.socketpair(); a.sendall(b"x"); assert b.recv(1) == b"x"
ev = threading.Event(); threading.Timer(0.05, ev.set).start(); ev.wait(5)
for n in os.listdir(d): os.unlink(os.path.join(d, n))
os.rmdir(d)
time.sleep(0.01)
print("workload ok", flush=True)
`;

/** A shell session of busybox applets; prints "workload ok" at the end. */
export const BUSYBOX_WORKLOAD = [
  'set -e',
  'mkdir -p /tmp/w && cd /tmp/w',
  'echo hello > a.txt && cat a.txt | tr a-z A-Z > b.txt && grep -q HELLO b.txt',
  'cp a.txt c.txt && mv c.txt d.txt && ln -s d.txt e.txt && readlink e.txt >/dev/null && rm -f d.txt e.txt',
  'seq 1 200 | sort -rn | head -n 3 | wc -l >/dev/null',
  'tar -cf /tmp/w.tar . && gzip -9 /tmp/w.tar && gunzip -c /tmp/w.tar.gz | tar -tf - >/dev/null',
  'find / -xdev -name "*.txt" -type f >/dev/null 2>&1 || true',
  'ls -la /bin >/dev/null && ps >/dev/null && id >/dev/null && date >/dev/null && uname -a >/dev/null',
  'sleep 0.1 & wait',
  'echo workload ok',
].join('\n');
