// A host root tampers with the monitor's BPF programs after start, and the agent's
// re-measurement writes an INSECURE entry that is sealed and anchored at once (in a BMC in
// its own network namespace, over HTTPS: netns-bmc.ts); `vigil verify` names it.
//
// 1. One of the agent's programs taken off its hook. A tp_btf (tracing) link has no
//    BPF_LINK_DETACH (`bpftool link detach` answers EOPNOTSUPP): it lives while a file
//    descriptor holds it, so the attacker makes the agent close its own link fd by ptrace
//    syscall injection (fixtures/inject-close.c).
// 2. Programs of the attacker's own put on the agent's hooks (fixtures/attach-tracepoint.c:
//    a perf_event link, a raw_tracepoint link, a perf event without a link, and a program
//    loaded and attached nowhere), and one on a tracepoint the agent does not hook, which
//    is not reported.
// 3. Another vigil agent's programs (the same code as the agent's own) on the same hooks:
//    written down as NORMAL, not an alert.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeChange, type AddedProgramChange, type ProgramChange } from '../../src/attest/index.js';
import { ALERTS_ONLY_LOG, startAgent, runVigil, type RunningAgent } from '../helpers/agent-process.js';
import { missingForContainerTests } from '../helpers/host.js';
import { until } from '../helpers/wait.js';
import { lookup, mapIdOf, update } from '../helpers/bpf-maps.js';
import { CONFIG_LAYOUT } from '../../src/events/layout.js';
import { caPems, createBmcNamespace, netnsUnavailable, type BmcNamespace, type NetnsBmc } from './netns-bmc.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'attest', 'fixtures');
let skip = missingForContainerTests() ?? (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'gcc is needed to build the fixtures');
let work = '';
let ns: BmcNamespace | undefined;
let service: NetnsBmc | undefined;
let trust = '';
let injector = '';
let attacher = '';
let trustAdded = '';

interface Entry {
  seq?: number; syscall?: string;
  args?: { links?: Array<{ program: string; linkId: number; section: string }>; changes?: ProgramChange[]; sameCodeAsOurs?: boolean; programs?: Array<AddedProgramChange & { sameCodeAsOurs: boolean }> };
  verdict?: { level: string; rules: string[] }; seal?: { firstSeq: number; lastSeq: number; checkpoint: string; reason: string };
}
/**
 * The agent's own records and the seals of a log directory, read as it grows: the agent
 * logs every container of the host (other tests' floods included), so the directory can
 * reach gigabytes, and each poll reads only what was appended since the last one.
 */
const KEEP = ['"kind":"agent"', '{"seal":'];
const tails = new Map<string, { pos: Map<string, number>; rest: Map<string, string>; kept: Entry[] }>();
function entries(dir: string): Entry[] {
  let t = tails.get(dir);
  if (!t) { t = { pos: new Map(), rest: new Map(), kept: [] }; tails.set(dir, t); }
  let segs: string[] = [];
  try { segs = readdirSync(dir).filter((n) => n.startsWith('segment-')).sort(); } catch { return t.kept; }
  for (const f of segs) {
    const fd = openSync(join(dir, f), 'r');
    try {
      const buf = Buffer.alloc(4 << 20);
      for (;;) {
        const at = t.pos.get(f) ?? 0;
        const n = readSync(fd, buf, 0, buf.length, at);
        if (n <= 0) break;
        t.pos.set(f, at + n);
        const lines = ((t.rest.get(f) ?? '') + buf.toString('latin1', 0, n)).split('\n');
        t.rest.set(f, lines.pop() ?? '');
        for (const l of lines) if (KEEP.some((k) => l.includes(k))) t.kept.push(JSON.parse(Buffer.from(l, 'latin1').toString('utf8')) as Entry);
      }
    } finally { closeSync(fd); }
  }
  return t.kept;
}

/** The fd in process `pid` that holds BPF link `linkId` (from /proc/PID/fdinfo). */
function linkFd(pid: number, linkId: number): number | undefined {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    if (target !== 'anon_inode:bpf_link') continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    if (new RegExp(`^link_id:\\s+${linkId}$`, 'm').test(info)) return Number(fd);
  }
  return undefined;
}

before(async () => {
  skip ??= await netnsUnavailable();
  if (skip) { process.stdout.write(`# BPF program tests skipped: ${skip}\n`); return; }
  work = mkdtempSync(join(tmpdir(), 'vprog-'));
  injector = join(work, 'inject-close');
  execFileSync('gcc', ['-static', '-O2', '-o', injector, join(fixtures, 'inject-close.c')]);
  attacher = join(work, 'attach-tracepoint');
  execFileSync('gcc', ['-static', '-O2', '-o', attacher, join(fixtures, 'attach-tracepoint.c')]);
  ns = createBmcNamespace('prg');
  service = await ns.startBmc({ stateDir: join(work, 'bmc'), port: 8443 });
  trust = join(work, 'trust.pem');
  writeFileSync(trust, caPems(join(work, 'bmc')));
});
after(async () => {
  await ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The agent, anchoring in a BMC over HTTPS pinned to its certificate. */
function agentWithLog(logDir: string, bmc = service as NetnsBmc): Promise<RunningAgent> {
  return startAgent(['--log', logDir, '--bmc', bmc.url, '--bmc-token', bmc.tokenFiles.host, '--bmc-pin', bmc.pinSha256,
    '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '1', '--no-default-policy', ALERTS_ONLY_LOG], 120_000);
}
const verifyCli = (logDir: string) => runVigil(['verify', '--bmc', service?.url ?? '', '--token', service?.tokenFiles.verifier ?? '', '--pin', service?.pinSha256 ?? '', '--log', logDir, '--trust', trust]);

test('a BPF program detached after start is an INSECURE entry, anchored at once, and vigil verify names it', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log');
  const agent = await agentWithLog(logDir);
  const client = service.client('verifier');
  try {
    const start = await until('the start record', () => entries(logDir).find((e) => e.syscall === 'start'));
    const links = start.args?.links ?? [];
    assert.ok(links.length >= 10, `the start record lists the agent's links: ${JSON.stringify(links)}`);
    const target = links.find((l) => l.program === 'vigil_exec');
    assert.ok(target, 'vigil_exec is among the links');
    // Nothing is reported while every link is in place (several re-checks pass).
    await until('a few heartbeats', () => entries(logDir).filter((e) => e.syscall === 'heartbeat').length >= 2);
    const ownChanges = () => entries(logDir).filter((e) => e.syscall === 'programs-changed' && (e.args?.changes ?? []).some((c) => c.change !== 'added'));
    assert.equal(ownChanges().length, 0, 'no change of the agent\'s own programs reported before the attack');

    const pid = agent.child.pid as number;
    const fd = linkFd(pid, target.linkId);
    assert.ok(fd !== undefined, `the agent holds link ${target.linkId} in a file descriptor`);
    const r = spawnSync(injector, [String(pid), String(fd)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `inject-close: ${r.stdout}${r.stderr}`);

    const alert = await until('the programs-changed entry', () => ownChanges()[0], 30_000);
    assert.equal(alert.verdict?.level, 'INSECURE');
    // (Another process's program added on a hook in the same re-check, on a shared machine, may share the entry.)
    assert.deepEqual(alert.args?.changes?.flatMap((c) => (c.change === 'added' ? [] : [[c.change, c.program, c.linkId]])), [['detached', 'vigil_exec', target.linkId]]);
    const seq = alert.seq ?? 0;
    const seal = await until('the alert sealed', () => entries(logDir).find((e) => e.seal && e.seal.firstSeq <= seq && e.seal.lastSeq >= seq), 10_000);
    assert.equal(seal.seal?.reason, 'insecure', 'sealed on its own, not by the hour-long batch timer');
    await until('the alert\'s checkpoint in the BMC', async () => (await client.anchors()).Members.some((m) => m.anchor === seal.seal?.checkpoint), 10_000);
    // Reported once, not at every re-check.
    await until('two more heartbeats', () => entries(logDir).filter((e) => e.syscall === 'heartbeat' && (e.seq ?? 0) > seq).length >= 2);
    assert.equal(ownChanges().length, 1);
  } finally {
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
  assert.match(agent.stderr(), /ALERT: BPF program vigil_exec of process\.bpf\.o \(tp_btf\/sched_process_exec, link \d+, program \d+\) was detached/);
  const v = await verifyCli(logDir);
  assert.equal(v.code, 1, `${v.stdout}${v.stderr}`);
  assertMonitorFailure(v.stderr, logDir, /FAILED \(monitor\): the log is intact, but entry seq \d+ \(\d{4}-[^)]+\) records that the agent's BPF program vigil_exec of process\.bpf\.o \(tp_btf\/sched_process_exec, link \d+, program \d+\) was detached/);
});

test('root turning the monitor off through vigil_config: a maps-changed entry, anchored at once, and vigil verify fails with monitor', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log-maps');
  // A BMC of its own: a BMC's anchor list is one log's.
  const bmc = await (ns as BmcNamespace).startBmc({ stateDir: join(work, 'bmc-maps'), port: 8445 });
  const trustMaps = join(work, 'trust-maps.pem');
  writeFileSync(trustMaps, caPems(bmc.stateDir));
  // The program re-check is off: on a shared machine other agents' programs would be the first alert.
  const agent = await startAgent(['--log', logDir, '--bmc', bmc.url, '--bmc-token', bmc.tokenFiles.host, '--bmc-pin', bmc.pinSha256,
    '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '1', '--no-default-policy', '--program-check-ms', '0', ALERTS_ONLY_LOG], 120_000);
  const client = bmc.client('verifier');
  try {
    await until('the start record', () => entries(logDir).find((e) => e.syscall === 'start'));
    const id = mapIdOf(agent.child.pid as number, 'vigil_config');
    const original = lookup(id, [0, 0, 0, 0]);
    const off = [...original];
    off.splice(CONFIG_LAYOUT.enabled, 4, 0, 0, 0, 0);
    update(id, [0, 0, 0, 0], off);
    const alert = await until('the maps-changed entry', () => entries(logDir).find((e) => e.syscall === 'maps-changed'), 30_000);
    assert.equal(alert.verdict?.level, 'INSECURE');
    const seq = alert.seq ?? 0;
    const seal = await until('the alert sealed', () => entries(logDir).find((e) => e.seal && e.seal.firstSeq <= seq && e.seal.lastSeq >= seq), 10_000);
    assert.equal(seal.seal?.reason, 'insecure');
    await until('the alert\'s checkpoint in the BMC', async () => (await client.anchors()).Members.some((m) => m.anchor === seal.seal?.checkpoint), 10_000);
    assert.deepEqual(lookup(id, [0, 0, 0, 0]), original, 'put back');
  } finally {
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
  const v = await runVigil(['verify', '--bmc', bmc.url, '--token', bmc.tokenFiles.verifier, '--pin', bmc.pinSha256, '--log', logDir, '--trust', trustMaps]);
  assert.equal(v.code, 1, `${v.stdout}${v.stderr}`);
  assert.match(v.stderr, /FAILED \(monitor\): the log is intact, but entry seq \d+ \([^)]+\) records that BPF maps only the agent writes were changed by someone else \(vigil_config\)/);
});

/**
 * The verifier names the first programs-changed entry of the log. On a machine shared with
 * other tests, another agent of a different build may have put its programs on the same
 * hooks first (rightly an alert too): then the verifier's sentence is that entry's, which
 * is checked instead of ours.
 */
function assertMonitorFailure(stderr: string, logDir: string, ours: RegExp): void {
  const first = entries(logDir).find((e) => e.syscall === 'programs-changed');
  const foreign = (first?.args?.changes ?? []).filter((c) => c.change === 'added' && !c.processes.some((p) => p.exe === attacher));
  if (first && foreign.length > 0 && foreign.length === first.args?.changes?.length) {
    process.stdout.write(`# the first monitor alert is another process's program: ${describeChange(foreign[0] as ProgramChange)}\n`);
    assert.ok(stderr.includes(`FAILED (monitor): the log is intact, but entry seq ${first.seq} `), stderr);
    return;
  }
  assert.match(stderr, ours);
}

/** bpffs pins the attacker left (removed at the end, whatever happened). */
const pins: string[] = [];
process.on('exit', () => { for (const p of pins) rmSync(p, { force: true }); });

/** Runs the attacker's loader; resolves with what it loaded once it is attached (the loader of a pin has exited by then). */
async function attach(mode: string, ...args: string[]): Promise<{ child: ChildProcess; pid: number; progId: number; linkId: number; tag: string; close: () => Promise<void> }> {
  const target = args.join(' ');
  const child = spawn(attacher, [mode, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const m = await until(`attach-tracepoint ${mode} ${target}`, () => {
    const got = /prog_id=(\d+) link_id=(\d+) tag=([0-9a-f]{16})/.exec(out);
    if (!got && child.exitCode !== null) throw new Error(`attach-tracepoint ${mode} ${target} exited ${child.exitCode}: ${out}`);
    return got;
  }, 30_000);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child, pid: child.pid as number, progId: Number(m[1]), linkId: Number(m[2]), tag: m[3] as string,
    close: async () => { child.stdin?.end(); if (child.exitCode === null && child.signalCode === null) await exited; },
  };
}

test('BPF programs added on the agent\'s hooks are INSECURE entries naming them, anchored at once; one elsewhere is not; vigil verify names them', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log-added');
  // A BMC of its own: a BMC's anchor list is one log's (the first test's log anchored in the other).
  const bmc = await (ns as BmcNamespace).startBmc({ stateDir: join(work, 'bmc-added'), port: 8444 });
  trustAdded = join(work, 'trust-added.pem');
  writeFileSync(trustAdded, caPems(bmc.stateDir));
  const agent = await agentWithLog(logDir, bmc);
  const client = bmc.client('verifier');
  const loaders: Array<Awaited<ReturnType<typeof attach>>> = [];
  const added = (): AddedProgramChange[] => entries(logDir).filter((e) => e.syscall === 'programs-changed').flatMap((e) => (e.args?.changes ?? []).filter((c): c is AddedProgramChange => c.change === 'added'));
  try {
    const start = await until('the start record', () => entries(logDir).find((e) => e.syscall === 'start'));
    const hooks = new Set((start.args?.links ?? []).map((l) => l.section.split('/').pop()));
    for (const h of ['sys_enter', 'sys_exit', 'sched_process_exec', 'sched_process_exit']) assert.ok(hooks.has(h), `the agent hooks ${h}`);
    assert.ok(!hooks.has('sched_switch'), 'the agent does not hook sched_switch');
    await until('a heartbeat', () => entries(logDir).some((e) => e.syscall === 'heartbeat'));

    // Elsewhere first: by the time the ones on the agent's hooks are reported, it was looked at.
    const elsewhere = await attach('perf-link', 'sched/sched_switch');
    loaders.push(elsewhere);
    const perfLink = await attach('perf-link', 'raw_syscalls/sys_enter');
    const rawTp = await attach('raw-tp', 'sys_exit');
    const perfIoctl = await attach('perf-ioctl', 'sched/sched_process_exec');
    const loadOnly = await attach('load-only');
    // Pinned in bpffs and its loader gone: on the hook with no process holding it.
    const pinPath = `/sys/fs/bpf/vigil-test-${process.pid}`;
    rmSync(pinPath, { force: true });
    const pinned = await attach('pin-raw-tp', 'sched_process_exit', pinPath);
    pins.push(pinPath);
    loaders.push(perfLink, rawTp, perfIoctl, loadOnly, pinned);
    const expected: Array<[typeof perfLink, string, RegExp, string]> = [
      [perfLink, 'sys_enter', new RegExp(`^perf_event link ${perfLink.linkId}$`), 'tracepoint'],
      [rawTp, 'sys_exit', new RegExp(`^raw_tracepoint link ${rawTp.linkId}$`), 'raw_tracepoint'],
      [perfIoctl, 'sched_process_exec', /^perf event fd \d+ of pid \d+ \(tracepoint, no BPF link\)$/, 'tracepoint'],
      [loadOnly, '', /^somewhere unknown \(no BPF link and no perf event names its hook; or only loaded\)$/, 'tracepoint'],
      [pinned, 'sched_process_exit', new RegExp(`^raw_tracepoint link ${pinned.linkId}$`), 'raw_tracepoint'],
    ];
    for (const [l, hook, attachment, type] of expected) {
      const c = await until(`the added program ${l.progId} (${hook || 'no hook'}) reported`, () => added().find((a) => a.progId === l.progId), 60_000);
      assert.equal(c.hook, hook);
      assert.match(c.attachment, attachment);
      assert.deepEqual([c.name, c.type, c.tag, c.uid, c.linkId], ['tamper_tp', type, l.tag, 0, l.linkId]);
      if (l === pinned) {
        assert.deepEqual(c.processes, [], 'no process holds the pinned link');
        assert.match(describeChange(c), /its loader unknown \(no process holds it\)/);
        continue;
      }
      const holder = c.processes.find((p) => p.pid === l.pid);
      assert.ok(holder, `the loader (pid ${l.pid}) is named: ${JSON.stringify(c.processes)}`);
      assert.equal(holder.exe, attacher);
      assert.match(holder.via, /program fd \d+/);
      if (hook) assert.ok(c.ours.length > 0 && c.ours.every((o) => o.section.endsWith(`/${hook}`)), `the agent's programs on ${hook}: ${JSON.stringify(c.ours)}`);
    }
    assert.equal(added().filter((a) => a.progId === elsewhere.progId).length, 0, 'the program on sched_switch (not a hook of the agent) is not reported');
    for (const l of loaders.slice(1)) assert.equal(added().filter((a) => a.progId === l.progId).length, 1, `program ${l.progId} reported once`);

    // Each report is INSECURE, sealed on its own and anchored.
    for (const e of entries(logDir).filter((x) => x.syscall === 'programs-changed' && (x.args?.changes ?? []).some((c) => c.change === 'added' && loaders.some((l) => l.progId === c.progId)))) {
      assert.equal(e.verdict?.level, 'INSECURE');
      assert.ok(e.verdict?.rules.includes('program added on a monitor hook'), JSON.stringify(e.verdict));
      const seq = e.seq ?? 0;
      const seal = await until('the report sealed', () => entries(logDir).find((x) => x.seal && x.seal.firstSeq <= seq && x.seal.lastSeq >= seq), 10_000);
      assert.equal(seal.seal?.reason, 'insecure');
      await until('its checkpoint in the BMC', async () => (await client.anchors()).Members.some((m) => m.anchor === seal.seal?.checkpoint), 30_000);
    }
  } finally {
    for (const l of loaders) await l.close();
    for (const p of pins.splice(0)) rmSync(p, { force: true });
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
  assert.match(agent.stderr(), /ALERT: hook sys_enter \([^)]*\) was joined by BPF program \d+ 'tamper_tp' \(tracepoint, tag [0-9a-f]{16}, loaded by uid 0, held by pid \d+ attach-tracepoi/);
  const v = await runVigil(['verify', '--bmc', bmc.url, '--token', bmc.tokenFiles.verifier, '--pin', bmc.pinSha256, '--log', logDir, '--trust', trustAdded]);
  await bmc.stop();
  assert.equal(v.code, 1, `${v.stdout}${v.stderr}`);
  const first = added().find((a) => loaders.some((l) => l.progId === a.progId)) as AddedProgramChange;
  assertMonitorFailure(v.stderr, logDir, new RegExp(`FAILED \\(monitor\\): the log is intact, but entry seq \\d+ \\([^)]+\\) records that the agent's hook ${first.hook} \\(.*\\) was joined by BPF program ${first.progId} 'tamper_tp' \\(${first.type}, tag ${first.tag}, loaded by uid 0, held by pid \\d+ attach-tracepoi`));
});

test('another vigil agent\'s programs on the same hooks (the same code) are written down as NORMAL, not as an alert; the ones there at start are listed with the start', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log-second');
  const secondLog = join(work, 'log-second-agent');
  const agent = await agentWithLog(logDir);
  let second: RunningAgent | undefined;
  try {
    await until('a heartbeat', () => entries(logDir).some((e) => e.syscall === 'heartbeat'));
    second = await startAgent(['--log', secondLog, '--no-default-policy', ALERTS_ONLY_LOG], 120_000);
    const pid = second.child.pid as number;
    const mine = (e: Entry) => (e.args?.changes ?? []).some((c) => c.change === 'added' && c.processes.some((p) => p.pid === pid));
    const noted = await until('the second agent\'s programs noted', () => entries(logDir).find((e) => e.syscall === 'programs-added' && mine(e)), 60_000);
    assert.equal(noted.verdict?.level, 'NORMAL');
    assert.equal(noted.args?.sameCodeAsOurs, true);
    // Its programs are all linked by now (it is ready): one more heartbeat after that, and none was an alert.
    const after = entries(logDir).length;
    await until('two more heartbeats', () => entries(logDir).slice(after).filter((e) => e.syscall === 'heartbeat').length >= 2, 30_000, 250);
    assert.equal(entries(logDir).filter((e) => e.syscall === 'programs-changed' && mine(e)).length, 0, 'no alert names the second agent');
    // The second agent found the first one's programs on its hooks at its start: written down with its start record.
    const first = agent.child.pid as number;
    const present = await until('the second agent\'s programs-present entry', () => entries(secondLog).find((e) => e.syscall === 'programs-present'));
    const listed = (present.args?.programs ?? []).filter((p) => p.processes.some((h) => h.pid === first));
    assert.ok(listed.length >= 10, `the first agent's programs are listed: ${JSON.stringify(present.args?.programs?.map((p) => [p.progId, p.name, p.hook]))}`);
    assert.ok(listed.every((p) => p.sameCodeAsOurs && p.hook !== ''), 'each on a hook, with the same code');
    assert.equal(present.verdict?.level, 'NORMAL');
    const startSeq = entries(secondLog).find((e) => e.syscall === 'start')?.seq ?? -1;
    assert.equal(present.seq, startSeq + 1, 'right after the start record, in its batch');
  } finally {
    if (second) assert.equal((await second.stop()).code, 0, second.stderr());
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
});
