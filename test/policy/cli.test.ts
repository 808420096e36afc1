// `vigil policy`: help, usage errors, `list` (table and JSON) and `test` (a recorded log
// replayed through the rules: changed verdicts, matches per rule, bad lines skipped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVigil } from '../helpers/agent-process.js';
import { loadPolicies } from '../../src/policy/index.js';
import type { VigilEvent } from '../../src/events/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-policy-cli-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('vigil policy --help, and each command\'s --help, print their usage and exit 0', async () => {
  const top = await runVigil(['policy', '--help']);
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^usage: vigil policy <command> \[options\]/);
  for (const c of ['check', 'test', 'list']) assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'), `the overview names ${c}`);
  for (const c of ['check', 'test', 'list']) {
    for (const flag of ['--help', '-h']) {
      const r = await runVigil(['policy', c, flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: vigil policy ${c} `), `${c} ${flag}`);
      assert.match(r.stdout, /--no-default-policy/);
    }
  }
  const test = await runVigil(['policy', 'test', '--help']);
  assert.match(test.stdout, /--events FILE/);
  assert.match(test.stdout, /--json/);
  // The vigil overview lists the command as built.
  const vigil = await runVigil(['--help']);
  assert.match(vigil.stdout, /^  policy +check policy documents/m);
  assert.doesNotMatch(vigil.stdout, /policy .*not built yet/);
});

test('usage errors exit 2 with a hint', async () => {
  const none = await runVigil(['policy']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^usage: vigil policy/);
  const unknown = await runVigil(['policy', 'frob']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frob'/);
  const noEvents = await runVigil(['policy', 'test', dir]);
  assert.equal(noEvents.code, 2);
  assert.match(noEvents.stderr, /--events EVENTS\.jsonl is required/);
  const badFlag = await runVigil(['policy', 'list', '--events', 'x']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /Unknown option '--events'/);
  assert.match(badFlag.stderr, /vigil policy list --help/);
});

const OVERRIDES = `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: tuning}
spec:
  rules:
  - name: web shell
    kinds: [exec]
    condition: process.comm in shell_binaries && process.parent in ["php", "php-fpm"]
    severity: critical
  overrides:
  - rule: package manager at run time
    enabled: false
`;

test('policy list: the rules in force, their source and overrides, as a table and as JSON', async () => {
  const p = file('tuning.yaml', OVERRIDES);
  const { set } = loadPolicies([p]);
  const rules = set.list();
  const r = await runVigil(['policy', 'list', p]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME +POLICY +SOURCE +KINDS +SEVERITY +ACTION +ON +OVERRIDDEN BY$/);
  assert.equal(lines.length, rules.length + 1, 'one line per rule');
  const row = (name: string) => lines.find((l) => l.startsWith(`${name}  `));
  assert.match(row('web shell')!, new RegExp(`^web shell +tuning +${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6 +exec +critical +alert +on +-$`));
  assert.match(row('package manager at run time')!, new RegExp(`vigil-default-execution +\\S*10-execution\\.yaml:\\d+ +exec +medium +alert +off +${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:11$`));
  assert.match(row('execve shell')!, / on +-$/);

  const j = await runVigil(['policy', 'list', '--json', p]);
  assert.equal(j.code, 0, j.stderr);
  const listed = JSON.parse(j.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(listed.map((x) => x['name']), rules.map((x) => x.name));
  const web = listed.find((x) => x['name'] === 'web shell')!;
  assert.deepEqual({ ...web, description: undefined }, {
    name: 'web shell', policy: 'tuning', file: p, line: 6, source: `${p}:6`, kinds: ['exec'], severity: 'critical', action: 'alert',
    enabled: true, overriddenBy: [], tags: [], description: undefined, syscalls: null,
  });
  const pm = listed.find((x) => x['name'] === 'package manager at run time')!;
  assert.equal(pm['enabled'], false);
  assert.deepEqual(pm['overriddenBy'], [`${p}:11`]);

  // Without the defaults only the file's own rules, and its override has nothing to change.
  const alone = await runVigil(['policy', 'list', '--no-default-policy', p]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:11:11: override of unknown rule 'package manager at run time'`, 'm'));
  assert.match(alone.stderr, /unknown name 'shell_binaries'/);
  const own = file('own.yaml', OVERRIDES.replace(/shell_binaries/, '["sh", "bash"]').replace(/  overrides:[\s\S]*$/, ''));
  const ownList = await runVigil(['policy', 'list', '--no-default-policy', own]);
  assert.equal(ownList.code, 0, ownList.stderr);
  assert.equal(ownList.stdout.trimEnd().split('\n').length, 2);
});

function event(seq: number, over: { kind?: string; comm?: string; parent?: string; image?: string; container?: string; path?: string; verdict?: VigilEvent['verdict'] | null }): VigilEvent {
  const kind = over.kind ?? 'exec';
  const comm = over.comm ?? 'cat';
  const container = over.container ?? 'web-1';
  const e: Record<string, unknown> = {
    seq, time: String(1796000000000000000n + BigInt(seq) * 1000000n), host: 'vm', kind, syscall: kind === 'exec' ? 'execve' : 'openat',
    args: kind === 'exec' ? { filename: `/bin/${comm}` } : { dirfd: '-100(AT_FDCWD)', name: over.path ?? '/etc/hostname', flags: '0(O_RDONLY)', mode: '0', path: over.path ?? '/etc/hostname' },
    ret: kind === 'exec' ? 0 : 3,
    container: { id: `id-${container}`.padEnd(64, '0'), name: container, image: over.image ?? 'registry.example/web/shop:1', runtime: 'docker' },
    process: { pid: 1000 + (seq % 50), nsPid: 5, ppid: 900, parent: over.parent ?? 'bash', comm, exe: `/bin/${comm}`, args: [comm], argsTruncated: false, uid: 0, gid: 0,
      caps: ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'],
      containerSetup: false, ancestors: [over.parent ?? 'bash', 'containerd-shim'], entered: false, stdio: ['pipe', 'pipe', 'pipe'], exeWritten: false,
      exeInImage: true, parentExe: `/bin/${over.parent ?? 'bash'}` },
    namespaces: { mnt: 4026532301, pid: 4026532304, cgroupId: '1', containerKey: '3203' },
  };
  if (over.verdict !== null) e['verdict'] = over.verdict ?? { level: 'NORMAL', rules: [], action: 'none' };
  return e as unknown as VigilEvent;
}

const WEB = `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: web}
spec:
  selector: {image: "registry.example/web/*"}
  rules:
  - name: web shell
    kinds: [exec]
    condition: process.comm in ["sh", "bash"] && process.parent == "php"
    severity: high
`;

test('policy test: prints the events whose verdict changes and the matches per rule; bad lines are reported and skipped', async () => {
  const policy = file('web.yaml', WEB);
  const lines = [
    JSON.stringify(event(1, { comm: 'bash', parent: 'php' })), // NORMAL → web shell
    JSON.stringify(event(2, { comm: 'bash', parent: 'nginx' })), // stays NORMAL
    'this is not JSON',
    '',
    JSON.stringify(event(3, { comm: 'cat', verdict: { level: 'INSECURE', rules: ['web shell'], action: 'alert', severity: 'high' } })), // → NORMAL
    JSON.stringify({ seq: 4, kind: 'exec' }),
    JSON.stringify(event(5, { comm: 'sh', parent: 'php', image: 'registry.example/db/pg:1', container: 'db-1' })), // outside the selector
    '[1, 2, 3]',
    JSON.stringify(event(6, { comm: 'sh', parent: 'php', verdict: null })), // no recorded verdict: NORMAL → web shell
    JSON.stringify(event(7, { comm: 'sh', parent: 'php', verdict: { level: 'INSECURE', rules: ['web shell'], action: 'alert', severity: 'high' } })), // unchanged
  ];
  const events = file('events.jsonl', lines.join('\n') + '\n');
  const r = await runVigil(['policy', 'test', '--no-default-policy', policy, '--events', events]);
  assert.equal(r.code, 0, r.stderr);
  const errs = r.stderr.trimEnd().split('\n');
  assert.equal(errs.length, 3, r.stderr);
  assert.ok(errs[0]!.startsWith(`${events}:3: not JSON (`) && errs[0]!.endsWith('); line skipped'), errs[0]);
  assert.equal(errs[1], `${events}:6: not an event: time must be a string; line skipped`);
  assert.equal(errs[2], `${events}:8: not an event: not a JSON object; line skipped`);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'seq 1 exec execve bash (web-1): NORMAL [] → INSECURE [web shell] alert',
    'seq 3 exec execve cat (web-1): INSECURE [web shell] alert → NORMAL []',
    'seq 6 exec execve sh (web-1): NORMAL [] → INSECURE [web shell] alert',
    `6 events replayed from ${events}, 3 verdicts changed, 3 bad lines skipped`,
    'RULE       MATCHES  RECORDED',
    'web shell  3        2',
  ]);

  const j = await runVigil(['policy', 'test', '--json', '--no-default-policy', policy, '--events', events]);
  assert.equal(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout) as { events: number; changed: Array<Record<string, unknown>>; rules: Record<string, unknown>; badLines: Array<{ line: number }> };
  assert.equal(report.events, 6);
  assert.deepEqual(report.changed.map((c) => [c['line'], c['seq'], c['kind'], c['syscall'], c['comm'], c['container'], (c['old'] as { rules: string[] }).rules, (c['new'] as { rules: string[] }).rules]), [
    [1, 1, 'exec', 'execve', 'bash', 'web-1', [], ['web shell']],
    [5, 3, 'exec', 'execve', 'cat', 'web-1', ['web shell'], []],
    [9, 6, 'exec', 'execve', 'sh', 'web-1', [], ['web shell']],
  ]);
  assert.deepEqual(report.changed[0]!['new'], { level: 'INSECURE', rules: ['web shell'], action: 'alert', severity: 'high' });
  assert.deepEqual(report.rules, { 'web shell': { matches: 3, recorded: 2, inForce: true } });
  assert.deepEqual(report.badLines.map((b) => b.line), [3, 6, 8]);
});

test('policy test: a missing events file or a bad policy exits 1', async () => {
  const missing = await runVigil(['policy', 'test', '--events', join(dir, 'absent.jsonl')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*absent\.jsonl: ENOENT/);
  const bad = file('bad.yaml', WEB.replace('severity: high', 'severity: hot'));
  const r = await runVigil(['policy', 'test', bad, '--events', join(dir, 'absent.jsonl')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:15: rule 'web shell': severity must be one of`));
});

test('policy test: 100,000 events under the default rules and one more policy, quickly', async () => {
  const policy = file('web2.yaml', WEB);
  const lines: string[] = [];
  const containers = ['web-1', 'web-2', 'web-3', 'api-1', 'api-2'];
  for (let seq = 1; seq <= 100_000; seq++) {
    const container = containers[(seq % 1000 === 0 ? seq / 1000 : seq) % containers.length]!;
    const image = container.startsWith('web') ? 'registry.example/web/shop:1' : 'registry.example/api/svc:2';
    const e = seq % 1000 === 0
      ? event(seq, { comm: 'bash', parent: 'php', container, image })
      : event(seq, { kind: seq % 2 === 0 ? 'file' : 'exec', comm: 'cat', container, image });
    lines.push(JSON.stringify(e));
  }
  const events = file('big.jsonl', lines.join('\n') + '\n');
  const started = Date.now();
  const r = await runVigil(['policy', 'test', '--json', policy, '--events', events], 180_000);
  const ms = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { events: number; changed: Array<{ seq: number; new: { rules: string[] } }>; rules: Record<string, { matches: number }>; badLines: unknown[] };
  assert.equal(report.events, 100_000);
  assert.deepEqual(report.badLines, []);
  // Every 1000th event is a shell under php: in a web container the web rule and the default
  // 'execve shell' match, in an api container only the default rule.
  const shells = lines.length / 1000;
  assert.equal(report.changed.length, shells, JSON.stringify(report.changed.slice(0, 3)));
  assert.equal(report.rules['execve shell']!.matches, shells);
  const web = report.changed.filter((c) => c.new.rules.includes('web shell'));
  assert.equal(report.rules['web shell']!.matches, web.length);
  assert.ok(web.length > 0 && web.length < shells);
  // Generous for a busy 2-core machine; a run here takes a few seconds.
  assert.ok(ms < 90_000, `took ${ms} ms`);
  console.log(`# policy test: 100,000 events in ${ms} ms`);
});
