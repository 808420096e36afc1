// Ways a container process tries to act unseen by the kernel side, each run in a real
// container under a real agent: 32-bit system calls from a 64-bit process, chroot, a
// name swapped while the call runs, a call parked while thousands of others are in
// flight, and calls the capture table used to leave out (mkdir, socket, userfaultfd).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VigilEvent } from '../../src/events/index.js';
import type { SyscallCountsReport } from '../../src/agent/index.js';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { agentConfig, brief, observe } from '../helpers/observe.js';

const source = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'agent', 'fixtures', 'evasion.c');
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = missingForContainerTests() ?? (hasCc ? undefined : 'no C compiler (cc) to build the fixture');

let built: string | undefined;
function fixture(): string {
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-evasion-'));
    chmodSync(dir, 0o755);
    built = join(dir, 'evasion');
    // Static and not position-independent: its data lies below 4 GiB, where int 0x80 can point.
    execFileSync('cc', ['-O2', '-static', '-no-pie', '-pthread', '-o', built, source]);
  }
  return built;
}

/** Runs the fixture with `args` in a busybox container under one agent; returns the fixture's own events. */
async function run(args: string[], opts: { agentArgs?: string[]; dockerArgs?: string[]; prefix?: string } = {}): Promise<{ events: VigilEvent[]; logs: string; exitCode: number }> {
  const r = await observe([opts.agentArgs ?? []], {
    image: TEST_IMAGES.busybox,
    script: `/evasion ${args.join(' ')}`,
    dockerArgs: ['-v', `${fixture()}:/evasion:ro`, ...(opts.dockerArgs ?? [])],
    namePrefix: opts.prefix ?? 'vigil-evasion',
  });
  const events = r.agents[0]!.events.filter((e) => e.process.exe === '/evasion');
  return { events, logs: r.logs, exitCode: r.exitCode };
}

test('a 32-bit open (int 0x80) of a watched path is reported as open, marked i386, and judged INSECURE', { skip }, async () => {
  const r = await run(['int80-open', '/etc/hostname']);
  assert.equal(r.exitCode, 0, r.logs);
  const open = r.events.find((e) => e.syscall === 'open' && e.args['abi'] === 'i386');
  assert.ok(open, `no i386 open: ${brief(r.events)}`);
  assert.equal(open.args['path'], '/etc/hostname');
  assert.equal(open.args['name'], '/etc/hostname');
  assert.equal(open.args['flags'], '0(O_RDONLY)');
  assert.ok(typeof open.ret === 'number' && open.ret >= 0);
  assert.equal(open.verdict.level, 'INSECURE');
  assert.ok(open.verdict.rules.includes('compat system call in container'), JSON.stringify(open.verdict));
  // No 64-bit fstat (5 in the x86-64 table) in its place.
  assert.ok(!r.events.some((e) => e.syscall === 'fstat'), brief(r.events));
});

test('a 32-bit call the capture table does not name is still reported once (the process made a compat call)', { skip }, async () => {
  // The open is above; getpid (20) has no capture rule. The first compat call of the process
  // is reported whatever it is: here the open comes first, so the getpid is only counted.
  const r = await run(['int80-open', '/tmp/not-watched'], { agentArgs: ['--no-default-policy'] });
  const compat = r.events.filter((e) => e.args['abi'] === 'i386');
  assert.ok(compat.length >= 1, `no compat call reported: ${brief(r.events)}`);
  assert.equal(compat[0]!.syscall, 'open');
});

test('32-bit and x32 calls are counted apart from x86-64 ones, and an x32 call is reported', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-counts-'));
  const counts = join(dir, 'counts.json');
  const r = await observe([['--no-default-policy', '--counts', counts]], {
    image: TEST_IMAGES.busybox,
    script: '/evasion int80-open /etc/hostname; /evasion x32-open /etc/hostname',
    dockerArgs: ['-v', `${fixture()}:/evasion:ro`],
    namePrefix: 'vigil-abi',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const report = JSON.parse(readFileSync(counts, 'utf8')) as SyscallCountsReport;
  const mine = report.containers.find((c) => c.id === r.id);
  assert.ok(mine, `no counts for the container: ${JSON.stringify(report.containers.map((c) => c.id))}`);
  assert.ok((mine.syscalls['i386:open'] ?? 0) >= 1, JSON.stringify(mine.syscalls));
  assert.ok((mine.syscalls['i386:getpid'] ?? 0) >= 1, JSON.stringify(mine.syscalls));
  assert.ok((mine.syscalls['x32:open'] ?? 0) >= 1, JSON.stringify(mine.syscalls));
  const events = r.agents[0]!.events.filter((e) => e.process.exe === '/evasion');
  const x32 = events.find((e) => e.args['abi'] === 'x32');
  assert.ok(x32, `no x32 call reported: ${brief(events)}`);
  assert.equal(x32.syscall, 'x32:open');
  assert.equal(x32.error, 'ENOSYS');
});

test('chroot does not move the path filter: chroot("/etc") then open("/hostname") is /etc/hostname', { skip }, async () => {
  const r = await run(['chroot-open', '/etc', '/hostname']);
  assert.equal(r.exitCode, 0, r.logs);
  const chroot = r.events.find((e) => e.syscall === 'chroot');
  assert.ok(chroot, `chroot not reported: ${brief(r.events)}`);
  assert.equal(chroot.args['path'], '/etc');
  const open = r.events.find((e) => (e.syscall === 'open' || e.syscall === 'openat') && e.args['name'] === '/hostname');
  assert.ok(open, `the open in the chroot was not reported: ${brief(r.events)}`);
  assert.equal(open.args['path'], '/etc/hostname');
  const chmod = r.events.find((e) => e.syscall === 'chmod' || e.syscall === 'fchmodat');
  assert.ok(chmod, `chmod in the chroot not reported: ${brief(r.events)}`);
  assert.equal(chmod.args['path'], '/etc/hostname');
});

// A bind-mounted file (/etc/hostname: the last component is compared) and one of the
// image (/etc/passwd, on the container's root file system: the whole path is compared,
// so a decoy of the same file name elsewhere is found out too).
for (const [target, decoy] of [['/etc/hostname', '/tmp/innocent'], ['/etc/passwd', '/tmp/passwd']] as const) {
  test(`a thread swapping the name during chmod cannot make a successful chmod of ${target} name ${decoy}`, { skip }, async () => {
    const r = await run(['chmod-race', '20000', target, decoy], { agentArgs: ['--no-default-policy'] });
    assert.equal(r.exitCode, 0, r.logs);
    const chmods = r.events.filter((e) => e.syscall === 'chmod' || e.syscall === 'fchmodat');
    const ok = chmods.filter((e) => e.ret === 0);
    assert.ok(ok.length > 0, `no successful chmod reported: ${r.logs}`);
    // The decoy does not exist: every successful chmod was of the target.
    const lies = ok.filter((e) => e.args['path'] !== target && e.args['args_changed'] !== true);
    assert.deepEqual(lies.slice(0, 5).map((e) => e.args), [], `${lies.length} of ${ok.length} successful chmods name another file, unmarked`);
    // The kernel's name of what it changed (shown when it differs from the name read) is the target's.
    const kernelName = (e: VigilEvent) => String(e.args['kernel_name'] ?? e.args['path']);
    for (const e of ok) assert.equal(kernelName(e).split('/').pop(), target.split('/').pop(), JSON.stringify(e.args));
    // A file of the image is named whole by the kernel (its path on the container's root file system).
    if (target === '/etc/passwd') for (const e of ok) assert.equal(kernelName(e), target, JSON.stringify(e.args));
    // A chmod the race did not touch is not marked.
    assert.ok(ok.some((e) => e.args['path'] === target && e.args['args_changed'] === undefined), 'not every chmod is marked');
  });
}

// 17,000 calls in flight at once: more than the LRU of 16,384 that held them before task
// storage. (At 20,000 parked threads the fixture stalls on this VM with no agent loaded,
// before any call of interest: a limit of the machine, not of vigil, not yet understood.)
// VIGIL_PARKED_THREADS changes the count.
const PARKED = Number(process.env['VIGIL_PARKED_THREADS'] ?? 17_000);
test(`a thread parked in a FIFO open while ${PARKED} other calls are in flight is reported when it returns`, { skip, timeout: 900_000 }, async () => {
  const r = await run(['fifo-park', String(PARKED)], { agentArgs: ['--no-default-policy'], prefix: 'vigil-park' });
  assert.equal(r.exitCode, 0, r.logs);
  const opens = r.events.filter((e) => (e.syscall === 'open' || e.syscall === 'openat') && e.args['path'] === '/etc/vigil-fifo');
  const reader = opens.find((e) => e.args['flags'] === '0(O_RDONLY)');
  assert.ok(reader, `the parked open was not reported: ${brief(opens)}`);
  assert.ok(typeof reader.ret === 'number' && reader.ret >= 0, `it succeeded: ${JSON.stringify(reader)}`);
  assert.equal(reader.args['refused_before_entry'], undefined);
});

test('mkdir, mkdirat, an AF_PACKET socket and userfaultfd are reported', { skip }, async () => {
  const dirs = await run(['mkdir', '/tmp/.vigil-hidden'], { agentArgs: ['--no-default-policy'] });
  assert.equal(dirs.exitCode, 0, dirs.logs);
  const mk = dirs.events.find((e) => e.syscall === 'mkdir');
  assert.ok(mk, `mkdir not reported: ${brief(dirs.events)}`);
  assert.equal(mk.args['path'], '/tmp/.vigil-hidden');
  const mkat = dirs.events.find((e) => e.syscall === 'mkdirat');
  assert.ok(mkat, `mkdirat not reported: ${brief(dirs.events)}`);
  assert.equal(mkat.args['path'], '/tmp/.vigil-hidden-at');

  const pkt = await run(['packet'], { agentArgs: ['--no-default-policy'], dockerArgs: ['--cap-add', 'NET_RAW'] });
  assert.equal(pkt.exitCode, 0, pkt.logs);
  const sock = pkt.events.find((e) => e.syscall === 'socket');
  assert.ok(sock, `socket not reported: ${brief(pkt.events)}`);
  assert.equal(sock.args['family'], 'AF_PACKET');
  assert.equal(sock.args['sock_family'], 'AF_PACKET');
  assert.equal(sock.args['sock_type'], 'SOCK_RAW');

  const uffd = await run(['uffd'], { agentArgs: ['--no-default-policy'] });
  assert.ok(uffd.events.some((e) => e.syscall === 'userfaultfd'), `userfaultfd not reported: ${brief(uffd.events)} ${uffd.logs}`);
});

test('/proc/self/fd/N of a pipe is reported as pipe:[INODE]; the directory /etc itself matches the watch /etc/', { skip }, async () => {
  const config = agentConfig('capture:\n  paths:\n    all: true\n');
  const p = await run(['procfd-pipe'], { agentArgs: ['--no-default-policy', '--config', config] });
  assert.equal(p.exitCode, 0, p.logs);
  const ino = /pipe inode (\d+)/.exec(p.logs)?.[1];
  const open = p.events.find((e) => String(e.args['name']).startsWith('/proc/self/fd/'));
  assert.ok(open && ino, `no open of /proc/self/fd/N: ${brief(p.events)} ${p.logs}`);
  assert.equal(open.args['path'], `pipe:[${ino}]`);
  assert.equal(open.args['path_truncated'], undefined);

  const d = await run(['opendir', '/etc'], { agentArgs: ['--no-default-policy'] });
  assert.equal(d.exitCode, 0, d.logs);
  assert.ok(d.events.some((e) => e.args['path'] === '/etc' && e.args['name'] === '/etc'), `the open of /etc was filtered out: ${brief(d.events)}`);
});
