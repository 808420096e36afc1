// Pushdown against the real kernel side: the kernel sends what the rules need. A path a
// rule names reaches user space although the capture configuration does not watch it;
// with every output limited to alerts, calls no rule looks at stop in the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe, tempDir } from '../helpers/observe.js';
import { ALERTS_ONLY_LOG } from '../helpers/agent-process.js';

const skip = missingForContainerTests();

function policyFile(yaml: string): string {
  const path = join(tempDir('vigil-policy'), 'policy.yaml');
  writeFileSync(path, yaml);
  return path;
}

function metric(path: string, name: string): number {
  const line = readFileSync(path, 'utf8').split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in ${path}`);
  return Number(line.split(' ')[1]);
}

test('a path a rule names is sent by the kernel although the capture does not watch it', { skip }, async () => {
  const policy = policyFile(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: opt-secrets}
spec:
  rules:
  - name: opt secret read
    kinds: [file]
    condition: has(args.path) && string(args.path).startsWith("/opt/vigil-secret/")
`);
  const script = 'mkdir -p /opt/vigil-secret /opt/vigil-plain; echo s > /opt/vigil-secret/k; echo p > /opt/vigil-plain/k; cat /opt/vigil-secret/k /opt/vigil-plain/k >/dev/null';
  const run = await observe([['--no-default-policy', '--policy', policy], ['--no-default-policy']], { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-pushdown-path' });
  assert.equal(run.exitCode, 0, run.logs);
  const [withRule, without] = run.agents as [typeof run.agents[0], typeof run.agents[0]];
  const secret = withRule.events.filter((e) => e.kind === 'file' && e.args['path'] === '/opt/vigil-secret/k');
  assert.ok(secret.length >= 2, `the write and the read of the named path are reported: ${brief(withRule.events.filter((e) => e.kind === 'file'))}`);
  for (const e of secret) assert.deepEqual([e.verdict.level, e.verdict.rules], ['INSECURE', ['opt secret read']]);
  // Paths no rule names and the configuration does not watch still stop in the kernel.
  assert.deepEqual(withRule.events.filter((e) => e.args['path'] === '/opt/vigil-plain/k').map((e) => e.syscall), []);
  // (mkdir is reported on every path, as chmod and unlink are: the path filter is for opens.)
  assert.deepEqual(without.events.filter((e) => String(e.args['path'] ?? '').startsWith('/opt/') && e.syscall !== 'mkdir').map((e) => e.syscall), [], 'without the rule, /opt is not sent');
});

test('with only alert outputs, system calls no rule looks at stop in the kernel', { skip }, async () => {
  const policy = policyFile(`apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: cat-exec}
spec:
  rules:
  - name: cat executed
    kinds: [exec]
    condition: process.comm == "cat"
`);
  const dir = tempDir('vigil-pushdown-alerts');
  const metricsAlerts = join(dir, 'alerts.prom');
  const metricsAll = join(dir, 'all.prom');
  const script = 'for i in {1..300}; do cat /etc/hostname >/dev/null; done';
  const run = await observe(
    [
      ['--no-default-policy', '--policy', policy, ALERTS_ONLY_LOG, '--metrics', metricsAlerts],
      ['--no-default-policy', '--policy', policy, '--metrics', metricsAll],
    ],
    { image: TEST_IMAGES.bash, script, namePrefix: 'vigil-pushdown-alerts' },
  );
  assert.equal(run.exitCode, 0, run.logs);
  const all = run.agents[1]!.events;
  const catExecs = all.filter((e) => e.kind === 'exec' && e.process.comm === 'cat');
  assert.equal(catExecs.length, 300, 'the full log has every exec of cat');
  assert.equal(all.filter((e) => e.kind === 'file' && e.args['path'] === '/etc/hostname').length, 300, 'the full log has every open');
  // The alerts-only agent wrote exactly the alerts, and its kernel never sent the opens.
  const written = run.agents[0]!.events;
  assert.equal(written.length, 300);
  assert.ok(written.every((e) => e.verdict.level === 'INSECURE' && e.kind === 'exec'));
  const fewer = metric(metricsAll, 'vigil_records_total') - metric(metricsAlerts, 'vigil_records_total');
  assert.ok(fewer >= 300, `the alerts-only agent received ${fewer} records fewer (the 300 opens at least)`);
});
