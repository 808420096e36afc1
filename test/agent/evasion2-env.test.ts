// Exec events carry every environment variable's name and the values of a short
// security-relevant set (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, GLIBC_TUNABLES, BASH_ENV,
// *_PROXY) without capture.environment: the rest of the values (secrets) stay out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

const skip = missingForContainerTests();

test('an exec with GLIBC_TUNABLES set carries it, and the names of the rest, not their values', { skip }, async () => {
  const r = await observe([[]], {
    image: TEST_IMAGES.busybox,
    script: 'GLIBC_TUNABLES=glibc.malloc.check=3 https_proxy=http://10.9.8.7:3128 VIGIL_SECRET=hunter2-kernb cat /etc/hostname >/dev/null',
    namePrefix: 'vigil-env',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const events = r.agents[0]?.events ?? [];
  const cat = events.find((e) => e.kind === 'exec' && e.process.name === 'cat');
  assert.ok(cat, brief(events));
  const values = cat.args['env_values'] as string[];
  assert.deepEqual([...values].sort(), ['GLIBC_TUNABLES=glibc.malloc.check=3', 'https_proxy=http://10.9.8.7:3128'], JSON.stringify(cat.args));
  const names = cat.args['env_names'] as string[];
  assert.ok(names.includes('VIGIL_SECRET') && names.includes('PATH') && names.includes('GLIBC_TUNABLES'), JSON.stringify(names));
  assert.equal(cat.args['envp'], undefined, 'the whole environment stays opt-in');
  assert.ok(!JSON.stringify(cat).includes('hunter2-kernb'), 'other values are not carried');
  assert.equal(cat.verdict.level, 'INSECURE');
  assert.ok(cat.verdict.rules.includes('loader environment in exec'), JSON.stringify(cat.verdict));
});

test('an exec with LD_PRELOAD set is judged, and one with only a proxy set is not', { skip }, async () => {
  const r = await observe([[]], {
    image: TEST_IMAGES.busybox,
    script: 'LD_PRELOAD=/tmp/evil.so cat /etc/hostname >/dev/null; HTTP_PROXY=http://10.1.1.1:8080 cat /etc/passwd >/dev/null; true',
    namePrefix: 'vigil-env',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const events = r.agents[0]?.events ?? [];
  const cat = events.find((e) => e.kind === 'exec' && e.process.name === 'cat' && e.process.args[1] === '/etc/hostname');
  assert.ok(cat, brief(events));
  assert.deepEqual(cat.args['env_values'], ['LD_PRELOAD=/tmp/evil.so']);
  assert.ok(cat.verdict.rules.includes('loader environment in exec'), JSON.stringify(cat.verdict));
  const head = events.find((e) => e.kind === 'exec' && e.process.name === 'cat' && e.process.args[1] === '/etc/passwd');
  assert.ok(head, brief(events));
  assert.deepEqual(head.args['env_values'], ['HTTP_PROXY=http://10.1.1.1:8080']);
  assert.ok(!head.verdict.rules.includes('loader environment in exec'), JSON.stringify(head.verdict));
});
