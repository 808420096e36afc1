// A host root takes one of the agent's BPF programs off its hook after start: the agent's
// re-measurement finds the link gone from the kernel, writes an INSECURE entry that is
// sealed and anchored at once, and `vigil verify` names the program.
//
// A tp_btf (tracing) link has no BPF_LINK_DETACH (`bpftool link detach` answers
// EOPNOTSUPP): it lives while a file descriptor holds it, so the attacker makes the agent
// close its own link fd by ptrace syscall injection (fixtures/inject-close.c).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BmcApiClient, startBmcService, type BmcService } from '../../src/bmc/index.js';
import { haveProgram } from '../../src/tpm/index.js';
import { startAgent, runVigil } from '../helpers/agent-process.js';
import { missingForContainerTests } from '../helpers/host.js';
import { until } from '../helpers/wait.js';

const fixture = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'attest', 'fixtures', 'inject-close.c');
let skip = missingForContainerTests() ?? (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'gcc is needed to build the ptrace fixture');
let work = '';
let service: BmcService | undefined;
let trust = '';
let injector = '';

interface Entry { seq?: number; syscall?: string; args?: { links?: Array<{ program: string; linkId: number }>; changes?: Array<{ change: string; program: string; linkId: number }> }; verdict?: { level: string }; seal?: { firstSeq: number; lastSeq: number; checkpoint: string; reason: string } }
function entries(dir: string): Entry[] {
  const out: Entry[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('segment-')).sort()) {
    for (const raw of readFileSync(join(dir, f), 'utf8').split('\n').slice(0, -1)) out.push(JSON.parse(raw) as Entry);
  }
  return out;
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
  if (skip) return;
  for (const p of ['swtpm', 'swtpm_setup', 'swtpm_localca']) if (!(await haveProgram(p))) skip = `not installed: ${p}`;
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'vprog-'));
  injector = join(work, 'inject-close');
  execFileSync('gcc', ['-static', '-O2', '-o', injector, fixture]);
  service = await startBmcService({ stateDir: join(work, 'bmc'), host: '127.0.0.1', port: 0, plainHttp: true });
  trust = join(work, 'trust.pem');
  writeFileSync(trust, ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].map((f) => readFileSync(join(work, 'bmc', 'ca', f), 'utf8')).join('\n'));
});
after(async () => {
  await service?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a BPF program detached after start is an INSECURE entry, anchored at once, and vigil verify names it', async (t) => {
  if (skip || !service) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log');
  const agent = await startAgent(['--log', logDir, '--bmc', service.url, '--bmc-token', service.tokenFiles.host, '--log-batch-ms', '3600000', '--log-batch', '100000', '--heartbeat', '1', '--no-default-policy']);
  const client = new BmcApiClient(service.url, service.tokens.verifier);
  try {
    const start = await until('the start record', () => entries(logDir).find((e) => e.syscall === 'start'));
    const links = start.args?.links ?? [];
    assert.ok(links.length >= 10, `the start record lists the agent's links: ${JSON.stringify(links)}`);
    const target = links.find((l) => l.program === 'vigil_exec');
    assert.ok(target, 'vigil_exec is among the links');
    // Nothing is reported while every link is in place (several re-checks pass).
    await until('a few heartbeats', () => entries(logDir).filter((e) => e.syscall === 'heartbeat').length >= 2);
    assert.equal(entries(logDir).filter((e) => e.syscall === 'programs-changed').length, 0, 'no change reported before the attack');

    const pid = agent.child.pid as number;
    const fd = linkFd(pid, target.linkId);
    assert.ok(fd !== undefined, `the agent holds link ${target.linkId} in a file descriptor`);
    const r = spawnSync(injector, [String(pid), String(fd)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `inject-close: ${r.stdout}${r.stderr}`);

    const alert = await until('the programs-changed entry', () => entries(logDir).find((e) => e.syscall === 'programs-changed'), 30_000);
    assert.equal(alert.verdict?.level, 'INSECURE');
    assert.deepEqual(alert.args?.changes?.map((c) => [c.change, c.program, c.linkId]), [['detached', 'vigil_exec', target.linkId]]);
    const seq = alert.seq ?? 0;
    const seal = await until('the alert sealed', () => entries(logDir).find((e) => e.seal && e.seal.firstSeq <= seq && e.seal.lastSeq >= seq), 10_000);
    assert.equal(seal.seal?.reason, 'insecure', 'sealed on its own, not by the hour-long batch timer');
    await until('the alert\'s checkpoint in the BMC', async () => (await client.anchors()).Members.some((m) => m.anchor === seal.seal?.checkpoint), 10_000);
    // Reported once, not at every re-check.
    await until('two more heartbeats', () => entries(logDir).filter((e) => e.syscall === 'heartbeat' && (e.seq ?? 0) > seq).length >= 2);
    assert.equal(entries(logDir).filter((e) => e.syscall === 'programs-changed').length, 1);
  } finally {
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
  assert.match(agent.stderr(), /ALERT: BPF program vigil_exec of process\.bpf\.o \(tp_btf\/sched_process_exec, link \d+, program \d+\) was detached/);
  const v = await runVigil(['verify', '--bmc', service.url, '--token', service.tokenFiles.verifier, '--log', logDir, '--trust', trust]);
  assert.equal(v.code, 1, `${v.stdout}${v.stderr}`);
  assert.match(v.stderr, /FAILED \(monitor\): the log is intact, but entry seq \d+ \(\d{4}-[^)]+\) records that the agent's BPF program vigil_exec of process\.bpf\.o \(tp_btf\/sched_process_exec, link \d+, program \d+\) was detached/);
});
