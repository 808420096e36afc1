// The default policy's noise budget: ordinary container activity raises no INSECURE
// verdict. Real containers (the test images and the workload images doing their usual
// work) run under two real agents at once, both with the default policy, one with the
// default capture and one with --all-paths (every file event reported, so the file rules
// see every path), and none of the events of the test's own containers may be INSECURE:
// not the containers' own code, and not the runtime's part (runc setting a container up, a
// docker exec before its exec: process.containerSetup events) either. The agents are
// shared by the tests; each test waits until they know its containers before letting them
// end, and reads its events once a marker written after them is in every log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { docker, missingForContainerTests, missingWorkloadImages, TEST_IMAGES, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';

const skip = missingForContainerTests() ?? missingWorkloadImages();
const READY_MS = 60_000;

interface Variant {
  label: string;
  args: string[];
}
const VARIANTS: Variant[] = [
  { label: 'default policy', args: [] },
  { label: 'default policy, --all-paths', args: ['--all-paths'] },
];
const ALL_PATHS = VARIANTS[1]!.label;

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

interface View {
  label: string;
  /** The events of the test's containers, the runtime's set-up included. */
  events: VigilEvent[];
}

/**
 * The agents of this file, one per variant, started once (an agent takes seconds to load its
 * programs on a busy machine) and shared by the tests. Each reads its log as it grows and
 * keeps the events of the containers tracked.
 */
class SharedAgents {
  private readonly logs: { variant: Variant; agent: RunningAgent; offset: number; partial: string; events: Map<string, VigilEvent[]> }[] = [];
  private readonly tracked = new Set<string>();
  private marker = '';
  private syncs = 0;

  async start(): Promise<void> {
    const agents = await Promise.all(VARIANTS.map((v) => startAgent(v.args)));
    for (const [i, agent] of agents.entries()) this.logs.push({ variant: VARIANTS[i]!, agent, offset: 0, partial: '', events: new Map() });
    // A container of the file's own, whose docker exec marks a point in every agent's log.
    this.marker = uniqueName('vigil-noise-marker');
    docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', this.marker, TEST_IMAGES.busybox, 'sleep', '3600');
  }

  async stop(): Promise<void> {
    try {
      if (this.marker) docker('rm', '-f', this.marker);
    } catch {
      // already gone
    }
    for (const { agent } of this.logs) {
      const { code } = await agent.stop();
      assert.equal(code, 0, agent.stderr());
    }
  }

  /** Keeps the events of this container from now on (call it before its events can be read). */
  track(id: string): void {
    this.tracked.add(id);
  }

  /** Reads what the agents wrote since the last read; true when a line contains `mark` (in every log). */
  private read(mark?: string): boolean[] {
    return this.logs.map((log) => {
      assert.equal(log.agent.child.exitCode, null, `the agent with ${log.variant.label} exited: ${log.agent.stderr()}`);
      const size = statSync(log.agent.logPath).size;
      if (size <= log.offset) return false;
      const fd = openSync(log.agent.logPath, 'r');
      const chunk = Buffer.alloc(size - log.offset);
      try {
        readSync(fd, chunk, 0, chunk.length, log.offset);
      } finally {
        closeSync(fd);
      }
      log.offset = size;
      const lines = (log.partial + chunk.toString('utf8')).split('\n');
      log.partial = lines.pop()!;
      let marked = false;
      for (const line of lines) {
        // Most lines are of other containers (other tests run at the same time): a string test first.
        const m = /"container":\{"id":"([0-9a-f]*)"/.exec(line);
        if (m && this.tracked.has(m[1]!)) {
          const e = JSON.parse(line) as VigilEvent;
          const list = log.events.get(e.container.id) ?? [];
          list.push(e);
          log.events.set(e.container.id, list);
        } else if (mark !== undefined && line.includes(mark)) {
          marked = true;
        }
      }
      return marked;
    });
  }

  /**
   * Waits until every agent has attributed events of container `id` that satisfy `enough`
   * (by default: any). The agent learns a container from the runtime while it runs; a
   * container gone before that cannot be attributed, so a test waits for this before it lets
   * a container end.
   */
  async seen(id: string, what: string, enough: (events: VigilEvent[]) => boolean = (e) => e.length > 0): Promise<void> {
    await waitFor(`the agents attribute events to ${what}`, () => {
      this.read();
      for (const log of this.logs) assert.ok(enough(log.events.get(id) ?? []), `not yet by the agent with ${log.variant.label}`);
    });
  }

  /** The events of `id` each agent has written so far. */
  eventsNow(id: string): View[] {
    this.read();
    return this.logs.map((log) => ({ label: log.variant.label, events: log.events.get(id) ?? [] }));
  }

  /**
   * Every event of `ids`, per agent, once the containers are gone: a marker exec runs after
   * them, and once every agent has written it, every event before it in the kernel's order is
   * in the logs.
   */
  async eventsOf(ids: Set<string>): Promise<View[]> {
    const mark = `vigil-noise-sync-${process.pid}-${++this.syncs}`;
    docker('exec', this.marker, 'true', mark);
    const marked = this.logs.map(() => false);
    await waitFor('the marker in every agent\'s log', () => {
      this.read(mark).forEach((m, i) => (marked[i] ||= m));
      assert.ok(marked.every(Boolean), `not yet in the log of the agent with ${this.logs[marked.indexOf(false)]?.variant.label}`);
    });
    return this.logs.map((log) => ({
      label: log.variant.label,
      events: [...ids].flatMap((id) => log.events.get(id) ?? []).sort((a, b) => a.seq - b.seq),
    }));
  }
}

const agents = new SharedAgents();
before(async () => {
  if (!skip) await agents.start();
});
after(async () => {
  if (!skip) await agents.stop();
});

// A one-shot container's command waits for this file before it runs, so that the agents know
// the container before its work (and its end) happens.
const GO_FILE = '/tmp/.vigil-noise-go';
const GATE = `until [ -e ${GO_FILE} ]; do sleep 0.05; done; exec "$0" "$@"`;

/** The containers a test runs: every one is tracked (its events are the test's), every one removed at the end. */
class Scene {
  readonly ids = new Set<string>();
  private readonly names: string[] = [];

  /** `docker run -d`, then waits until the agents attribute the container's events. */
  async start(prefix: string, image: string, command: string[] = [], dockerArgs: string[] = []): Promise<{ id: string; name: string }> {
    const name = uniqueName(prefix);
    this.names.push(name);
    const id = docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', ...dockerArgs, '--name', name, image, ...command);
    this.ids.add(id);
    agents.track(id);
    await agents.seen(id, `container ${name}`);
    return { id, name };
  }

  /** Starts one-shot containers (behind the gate) and runs them to their end, at once: their ids, exit codes and output (stdout then stderr). */
  async runToEnd(prefix: string, image: string, commands: string[][], dockerArgs: string[] = []): Promise<{ id: string; exitCode: number; out: string }[]> {
    const started: { id: string; name: string }[] = [];
    for (const command of commands) started.push(await this.start(prefix, image, ['sh', '-c', GATE, ...command], dockerArgs));
    for (const c of started) docker('exec', c.name, 'touch', GO_FILE);
    return started.map((c) => ({ id: c.id, exitCode: Number(docker('wait', c.name)), out: docker('logs', c.name) }));
  }

  ipOf(name: string): string {
    const ip = docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name);
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `${name} has an address on the default bridge`);
    return ip;
  }

  removeAll(): void {
    for (const name of this.names) {
      try {
        docker('rm', '-f', '-v', name);
      } catch {
        // never started, or already gone
      }
    }
  }
}

function describe(e: VigilEvent): string {
  const args = JSON.stringify(e.args);
  return `${e.verdict.rules.join(', ')} <- ${e.kind} ${e.syscall} by ${e.process.comm} (pid ${e.process.pid}, nsPid ${e.process.nsPid}, parent ${e.process.parent}, ` +
    `setup ${e.process.containerSetup}, entered ${e.process.entered}, args ${JSON.stringify(e.process.args)}) ${args.length > 300 ? `${args.slice(0, 300)}…` : args} ` +
    `in ${e.container.image}`;
}

/**
 * Runs `scenario` under the agents (one per variant), removes its containers, and asserts
 * that none of the scenario's containers' events is INSECURE in any variant. `check` then
 * looks at each variant's events to make sure the workload was seen (so that "no alert" is
 * not "nothing seen").
 */
async function noiseBudget(scenario: (scene: Scene) => Promise<void>, check: (view: View) => void): Promise<void> {
  const scene = new Scene();
  try {
    await scenario(scene);
  } finally {
    scene.removeAll();
  }
  const views = await agents.eventsOf(scene.ids);
  const insecure = views.flatMap((v) => v.events.filter((e) => e.verdict.level === 'INSECURE').map((e) => `[${v.label}] ${describe(e)}`));
  assert.deepEqual(insecure, [], `ordinary activity raised ${insecure.length} INSECURE event(s):\n${insecure.join('\n')}`);
  for (const view of views) {
    assert.ok(view.events.length > 0, `[${view.label}] no events of the test's containers`);
    check(view);
  }
}

function execsOf(view: View, comm: string): VigilEvent[] {
  return view.events.filter((e) => e.kind === 'exec' && e.process.comm === comm);
}

function assertExec(view: View, comm: string, what = comm): VigilEvent {
  const found = execsOf(view, comm);
  assert.ok(found.length > 0, `[${view.label}] no exec of ${what} among ${JSON.stringify([...new Set(view.events.filter((e) => e.kind === 'exec').map((e) => e.process.comm))])}`);
  return found[0]!;
}

/** With --all-paths, a file event for `path` (proof the file rules saw the workload's own files). */
function assertFileSeen(view: View, match: (path: string) => boolean, what: string): void {
  if (view.label !== ALL_PATHS) return;
  const paths = view.events.filter((e) => e.kind === 'file').map((e) => String(e.args['path'] ?? e.args['name'] ?? ''));
  assert.ok(paths.some(match), `[${view.label}] no file event for ${what}; paths seen: ${JSON.stringify([...new Set(paths)].slice(0, 80))}`);
}

/** Every docker exec'd program was preceded by the runtime's set-up in that process, and was seen entering. */
function assertExecSetupSeen(view: View, comm: string): void {
  const entered = execsOf(view, comm).filter((e) => e.process.entered);
  assert.ok(entered.length > 0, `[${view.label}] no docker exec of ${comm} (process.entered)`);
  for (const e of entered) {
    assert.ok(
      view.events.some((s) => s.process.containerSetup && s.process.pid === e.process.pid),
      `[${view.label}] no runtime set-up event (process.containerSetup) in the process of docker exec ${e.process.args.join(' ')}`,
    );
  }
}

// (1) The runtime's own work: runc setting a container up, the kernel's CAP_SYS_ADMIN check
// (denied, not audited) at every exec, the end of a container: on its own, by SIGTERM, by
// SIGKILL after the grace time, a restart and a kill.
test('noise: start and stop of busybox and bash containers raise no INSECURE', { skip }, async () => {
  const short: string[] = [];
  await noiseBudget(
    async (scene) => {
      // A plain program as PID 1, which ignores SIGTERM: docker stop kills it after the grace time.
      const bb = await scene.start('vigil-noise-bb', TEST_IMAGES.busybox, ['sleep', '300']);
      // A shell as PID 1 that exits on SIGTERM (its child is killed with the container).
      const bbsh = await scene.start('vigil-noise-bbsh', TEST_IMAGES.busybox, ['sh', '-c', 'trap "exit 0" TERM; echo up; while :; do sleep 1 & wait; done']);
      const bash = await scene.start('vigil-noise-bash', TEST_IMAGES.bash, ['bash', '-c', 'trap "exit 0" TERM; echo up; while :; do sleep 1 & wait; done']);
      // Docker's init as PID 1 (it passes the signal on to its child).
      const init = await scene.start('vigil-noise-init', TEST_IMAGES.bash, ['sleep', '300'], ['--init']);
      for (const c of [bbsh, bash]) await waitFor(`${c.name} up`, () => assert.match(docker('logs', c.name), /up/));
      docker('stop', '-t', '1', bb.name, bbsh.name, bash.name, init.name);
      // Containers that run to their end.
      for (const image of [TEST_IMAGES.busybox, TEST_IMAGES.bash]) {
        for (const run of await scene.runToEnd('vigil-noise-short', image, [['true'], ['ls', '/']])) {
          assert.equal(run.exitCode, 0, run.out);
          short.push(run.id);
        }
      }
      const restarted = await scene.start('vigil-noise-restart', TEST_IMAGES.busybox, ['sleep', '300']);
      docker('restart', '-t', '0', restarted.name);
      await agents.seen(restarted.id, `${restarted.name} after its restart`, (events) => events.filter((e) => e.kind === 'exec' && e.process.comm === 'sleep').length >= 2);
      docker('kill', restarted.name);
    },
    (view) => {
      assertExec(view, 'sleep');
      assertExec(view, 'docker-init');
      assertExec(view, 'true');
      assertExec(view, 'ls');
      for (const id of short) assert.ok(view.events.some((e) => e.container.id === id && e.kind === 'exit' && e.process.nsPid === 1), `[${view.label}] no end of ${id.slice(0, 12)}`);
      const setup = view.events.filter((e) => e.process.containerSetup);
      assert.ok(setup.some((e) => e.kind === 'capability'), `[${view.label}] no capability check by the runtime`);
      const denied = view.events.filter((e) => !e.process.containerSetup && e.kind === 'capability' && e.args['capability'] === 'SYS_ADMIN' && e.args['granted'] === false);
      assert.ok(denied.length > 0, `[${view.label}] the kernel's denied CAP_SYS_ADMIN check at exec was not reported`);
      const ends = view.events.filter((e) => e.kind === 'exit' && e.process.nsPid === 1);
      assert.ok(ends.some((e) => e.args['signal'] === 9), `[${view.label}] no PID 1 killed by SIGKILL`);
      assert.ok(ends.some((e) => e.args['signal'] === 0), `[${view.label}] no PID 1 that exited by itself`);
    },
  );
});

// (2) docker exec of programs that are not shells, in both test images.
test('noise: docker exec of cat, ls, id, ps, env and touch raises no INSECURE', { skip }, async () => {
  await noiseBudget(
    async (scene) => {
      for (const image of [TEST_IMAGES.busybox, TEST_IMAGES.bash]) {
        const c = await scene.start('vigil-noise-exec', image, ['sleep', '300']);
        assert.equal(docker('exec', c.name, 'cat', '/etc/hostname'), c.id.slice(0, 12));
        assert.match(docker('exec', c.name, 'ls', '/'), /\betc\b/);
        docker('exec', c.name, 'ls', '-l', '/etc', '/tmp');
        assert.match(docker('exec', c.name, 'id'), /uid=0\(root\)/);
        assert.match(docker('exec', c.name, 'env'), /PATH=/);
        assert.match(docker('exec', c.name, 'cat', '/proc/1/cmdline'), /sleep/);
        assert.match(docker('exec', '-u', '65534', c.name, 'id'), /uid=65534/);
        docker('exec', '-w', '/tmp', c.name, 'touch', 'vigil-noise');
        if (image === TEST_IMAGES.busybox) assert.match(docker('exec', c.name, 'ps'), /sleep 300/);
        docker('stop', '-t', '0', c.name);
      }
    },
    (view) => {
      for (const comm of ['cat', 'ls', 'id', 'env', 'touch', 'ps']) assertExecSetupSeen(view, comm);
    },
  );
});

// (3) nginx serving static files: pages fetched from other containers on the bridge and
// from inside, a reload, a stop.
test('noise: nginx serving static files, reloaded and stopped, raises no INSECURE', { skip }, async () => {
  await noiseBudget(
    async (scene) => {
      const nginx = await scene.start('vigil-noise-nginx', WORKLOAD_IMAGES.nginx);
      const inside = (path: string) => docker('exec', nginx.name, 'wget', '-qO-', `http://127.0.0.1:8080${path}`);
      assert.match(await waitFor('nginx', () => inside('/')), /<h1>vigil-test nginx<\/h1>/);
      assert.equal(inside('/hello.txt'), 'vigil-test static file');
      assert.throws(() => inside('/missing'), /404/);
      const ip = scene.ipOf(nginx.name);
      const [several, one] = await scene.runToEnd('vigil-noise-nginx-client', WORKLOAD_IMAGES.nginx, [
        ['sh', '-c', ['/', '/hello.txt', '/index.html', '/hello.txt'].map((p) => `wget -qO- http://${ip}:8080${p}`).join(' && ')],
        ['wget', '-qO-', `http://${ip}:8080/hello.txt`],
      ]);
      assert.equal(several!.exitCode, 0, several!.out);
      assert.match(several!.out, /vigil-test static file/);
      assert.equal(one!.out, 'vigil-test static file');

      const workers = () => docker('exec', nginx.name, 'ps', '-o', 'pid,args').split('\n').filter((l) => l.includes('nginx: worker')).map((l) => l.trim().split(/\s+/)[0]);
      const before = workers();
      docker('exec', nginx.name, 'nginx', '-s', 'reload');
      // A reload starts new workers; the old ones finish and go.
      await waitFor('nginx reload', () => {
        const now = workers();
        assert.ok(now.length > 0 && now.every((p) => !before.includes(p)), `workers ${before.join(',')} -> ${now.join(',')}`);
      });
      assert.equal(inside('/hello.txt'), 'vigil-test static file');
      await waitFor('access log', () => assert.match(docker('logs', nginx.name), /"GET \/index\.html HTTP\/1\.1" 200/));
      docker('stop', nginx.name);
    },
    (view) => {
      assertExec(view, 'nginx');
      assertExecSetupSeen(view, 'wget');
      assertExecSetupSeen(view, 'nginx');
      assert.ok(view.events.some((e) => e.kind === 'network' && e.syscall === 'connect' && String(e.args['addr']).endsWith(':8080')), `[${view.label}] no connect to nginx`);
      assertFileSeen(view, (p) => p.startsWith('/srv/www/'), 'the files served from /srv/www');
    },
  );
});

// (4) redis answering and persisting (BGSAVE, the append-only file and its rewrite, the
// save at shutdown), from docker exec and from other containers; a restart.
test('noise: redis answering PING, SET/GET and persisting raises no INSECURE', { skip }, async () => {
  await noiseBudget(
    async (scene) => {
      const redis = await scene.start('vigil-noise-redis', WORKLOAD_IMAGES.redis);
      const cli = (...args: string[]) => docker('exec', redis.name, 'redis-cli', ...args);
      await waitFor('redis', () => assert.equal(cli('ping'), 'PONG'));
      assert.deepEqual(cli('config', 'get', 'appendonly').split('\n'), ['appendonly', 'yes']);
      assert.equal(cli('set', 'vigil:key', 'a value'), 'OK');
      assert.equal(cli('get', 'vigil:key'), 'a value');
      assert.equal(cli('incrby', 'vigil:counter', '41'), '41');
      assert.match(cli('bgsave'), /Background saving started/);
      await waitFor('BGSAVE', () => {
        const info = cli('info', 'persistence');
        assert.match(info, /rdb_bgsave_in_progress:0/);
        assert.match(info, /rdb_last_bgsave_status:ok/);
      });
      assert.match(cli('bgrewriteaof'), /rewriting started/);
      await waitFor('BGREWRITEAOF', () => {
        const info = cli('info', 'persistence');
        assert.match(info, /aof_rewrite_in_progress:0/);
        assert.match(info, /aof_rewrite_scheduled:0/);
        assert.match(info, /aof_last_bgrewrite_status:ok/);
      });
      const ip = scene.ipOf(redis.name);
      const [several, one] = await scene.runToEnd('vigil-noise-redis-client', WORKLOAD_IMAGES.redis, [
        ['sh', '-c', `redis-cli -h ${ip} ping && redis-cli -h ${ip} set vigil:other 1 && redis-cli -h ${ip} get vigil:key`],
        ['redis-cli', '-h', ip, 'incr', 'vigil:counter'],
      ]);
      assert.equal(several!.exitCode, 0, several!.out);
      assert.deepEqual(several!.out.split('\n'), ['PONG', 'OK', 'a value']);
      assert.equal(one!.out, '42');
      docker('restart', redis.name);
      await waitFor('redis after restart', () => assert.equal(cli('get', 'vigil:counter'), '42'));
      await agents.seen(redis.id, `${redis.name} after its restart`, (events) => events.filter((e) => e.kind === 'exec' && e.process.comm === 'redis-server').length >= 2);
      docker('stop', redis.name);
    },
    (view) => {
      assertExec(view, 'redis-server');
      assertExecSetupSeen(view, 'redis-cli');
      assertFileSeen(view, (p) => p.startsWith('/data/'), 'the data files in /data');
    },
  );
});

// (5) A Python program: file I/O under /tmp and /app, threads, a TCP echo on 127.0.0.1,
// json, a subprocess of a program that is not a shell.
const PYTHON_PROGRAM = String.raw`
import json, os, socket, subprocess, tempfile, threading

result = {}
os.makedirs("/app/data", exist_ok=True)
with open("/app/data/state.json", "w") as f:
    json.dump({"n": 1, "items": list(range(100))}, f)
with open("/app/data/state.json") as f:
    result["app_ok"] = json.load(f)["n"] == 1
os.replace("/app/data/state.json", "/app/data/state.old.json")
with open("/app/data/log.txt", "a") as f:
    for i in range(100):
        f.write(f"line {i}\n")
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "blob.bin")
    data = os.urandom(1 << 18)
    with open(path, "wb") as f:
        f.write(data)
    with open(path, "rb") as f:
        result["tmp_ok"] = f.read() == data
    os.unlink(path)
with tempfile.NamedTemporaryFile("w+", dir="/tmp", suffix=".json") as f:
    json.dump(result, f)
    f.flush()
    f.seek(0)
    result["json_ok"] = json.load(f) == {"app_ok": True, "tmp_ok": True}

totals = [0] * 4
lock = threading.Lock()
def work(i):
    s = sum(range(i * 100000, (i + 1) * 100000))
    with lock:
        totals[i] = s
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

listing = subprocess.run(["/bin/ls", "/app/data"], capture_output=True, text=True, check=True).stdout.split()
result["ls_ok"] = listing == ["log.txt", "state.old.json"]
result["cat_ok"] = subprocess.run(["cat", "/etc/hostname"], capture_output=True, text=True, check=True).stdout.strip() == os.uname().nodename
print(json.dumps(result, sort_keys=True))
`;

test('noise: a Python program doing file I/O, threads, a TCP echo and a subprocess raises no INSECURE', { skip }, async () => {
  await noiseBudget(
    async (scene) => {
      const [run] = await scene.runToEnd('vigil-noise-python', WORKLOAD_IMAGES.python, [['python3', '-c', PYTHON_PROGRAM]], ['--workdir', '/app']);
      assert.equal(run!.exitCode, 0, run!.out);
      assert.deepEqual(JSON.parse(run!.out), { app_ok: true, cat_ok: true, echo_ok: true, json_ok: true, ls_ok: true, threads_ok: true, tmp_ok: true });
    },
    (view) => {
      const python = assertExec(view, 'python3');
      assertExec(view, 'ls');
      assertExec(view, 'cat');
      assert.ok(view.events.some((e) => e.kind === 'fork' && e.process.pid === python.process.pid), `[${view.label}] no fork of python's subprocess`);
      assert.ok(view.events.some((e) => e.kind === 'network' && e.syscall === 'connect' && String(e.args['addr']).startsWith('127.0.0.1:')), `[${view.label}] no connect of the echo client`);
      assertFileSeen(view, (p) => p.startsWith('/app/data/'), 'the files under /app');
      assertFileSeen(view, (p) => p.startsWith('/tmp/'), 'the files under /tmp');
    },
  );
});

// (6) A shell script as the entrypoint, as an image brings it (the conventional
// /docker-entrypoint.sh, run by its #! line): ordinary commands, loops, sub-shells, command
// substitution, a pipeline, helper scripts, shells it starts, then exec of the service.
const ENTRYPOINT = `#!/bin/bash
set -eu
echo "starting in $(pwd) as $(id -un)"
ls /
ls -l /etc/hostname
cat /etc/hostname
if command -v date >/dev/null; then date; else printf '%(%Y-%m-%d %H:%M:%S)T\n' -1; fi
id
if command -v whoami >/dev/null; then whoami; fi
sleep 0.1
for i in 1 2 3; do
  echo "step $i" > "/tmp/step.$i"
  cat "/tmp/step.$i"
done
n=0
while [ "$n" -lt 3 ]; do n=$((n + 1)); done
( cd /tmp && ls step.* )
count=$(ls /tmp | grep -c step)
echo "count=$count"
{ echo a; echo b; } | head -1
grep -q root /etc/hostname || true
mkdir -p /tmp/work && cp /tmp/step.1 /tmp/work/ && mv /tmp/work/step.1 /tmp/work/done && rm -r /tmp/work
/opt/app/docker-entrypoint.d/10-helper.sh "from entrypoint"
bash /opt/app/docker-entrypoint.d/10-helper.sh "through bash"
sh -c 'echo "sh -c from entrypoint"'
export MODE=service
exec "$@"
`;

// A script of the image's docker-entrypoint.d, itself starting a shell.
const HELPER = `#!/bin/sh
echo "helper: $1"
ls /opt/app >/dev/null
sh -c 'echo "sh -c from helper"'
`;
const HELPER_COMM = '10-helper.sh';

test('noise: a shell-script entrypoint doing ordinary commands, loops and sub-shells raises no INSECURE', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-noise-entry-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'docker-entrypoint.d'));
  writeFileSync(join(dir, 'docker-entrypoint.sh'), ENTRYPOINT, { mode: 0o755 });
  writeFileSync(join(dir, 'docker-entrypoint.d', HELPER_COMM), HELPER, { mode: 0o755 });
  try {
    await noiseBudget(
      async (scene) => {
        // The gate (sh) runs first, then execs the entrypoint: the script is PID 1, as with ENTRYPOINT.
        const [run] = await scene.runToEnd('vigil-noise-entry', TEST_IMAGES.bash, [['/opt/app/docker-entrypoint.sh', 'sh', '-c', 'echo "service $MODE"; sleep 0.1']], [
          '-v', `${dir}:/opt/app:ro`,
        ]);
        assert.equal(run!.exitCode, 0, run!.out);
        for (const line of [/count=3/, /helper: from entrypoint/, /helper: through bash/, /sh -c from entrypoint/, /sh -c from helper/, /service service/]) assert.match(run!.out, line);
      },
      (view) => {
        for (const comm of ['ls', 'cat', 'id', 'sleep', 'grep', 'head', 'cp', 'mv', 'rm', 'mkdir']) assertExec(view, comm);
        // The kernel names a script run by its #! line after the script (15 characters), not its shell.
        const entry = assertExec(view, 'docker-entrypoi', 'the entrypoint script');
        assert.equal(entry.process.nsPid, 1);
        assert.ok(view.events.some((e) => e.kind === 'fork' && e.process.nsPid === 1), `[${view.label}] no sub-shell forked by the entrypoint`);
        assert.ok(execsOf(view, 'sh').some((e) => e.process.parent === 'docker-entrypoi'), `[${view.label}] no sh started by the entrypoint`);
        assert.ok(execsOf(view, 'sh').some((e) => e.process.parent === HELPER_COMM), `[${view.label}] no sh started by the helper script`);
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
