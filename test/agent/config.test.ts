// The agent's policy and output options: flags over the config file over the defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseAgentArgs } from '../../src/agent/index.js';
import { tempDir } from '../helpers/observe.js';

function configFile(yaml: string): string {
  const path = join(tempDir('vigil-config'), 'agent.yaml');
  writeFileSync(path, yaml);
  return path;
}

test('defaults: text on stdout, the default rule set, no policy files', () => {
  const c = parseAgentArgs([]);
  assert.deepEqual(c?.outputs, [{ format: 'text', path: '-' }]);
  assert.equal(c?.defaultPolicy, true);
  assert.deepEqual(c?.policies, []);
});

test('--alerts adds an alerts-only output and replaces the default one; --output keeps it', () => {
  assert.deepEqual(parseAgentArgs(['--alerts', 'text:-'])?.outputs, [{ format: 'text', path: '-', insecureOnly: true }]);
  assert.deepEqual(parseAgentArgs(['--output', 'jsonl:/x', '--alerts', 'text:-'])?.outputs, [
    { format: 'jsonl', path: '/x' },
    { format: 'text', path: '-', insecureOnly: true },
  ]);
});

test('config keys alerts, policies, defaultPolicy; flags add policies after the file and override alerts', () => {
  const path = configFile('outputs: [jsonl:/var/log/e.jsonl]\nalerts: [text:-]\npolicies: [/etc/vigil/a.yaml]\ndefaultPolicy: false\n');
  const fromFile = parseAgentArgs(['--config', path]);
  assert.deepEqual(fromFile?.outputs, [{ format: 'jsonl', path: '/var/log/e.jsonl' }, { format: 'text', path: '-', insecureOnly: true }]);
  assert.deepEqual(fromFile?.policies, ['/etc/vigil/a.yaml']);
  assert.equal(fromFile?.defaultPolicy, false);
  const merged = parseAgentArgs(['--config', path, '--policy', '/tmp/b', '--alerts', 'jsonl:/tmp/alerts.jsonl']);
  assert.deepEqual(merged?.policies, ['/etc/vigil/a.yaml', '/tmp/b']);
  assert.deepEqual(merged?.outputs, [{ format: 'jsonl', path: '/var/log/e.jsonl' }, { format: 'jsonl', path: '/tmp/alerts.jsonl', insecureOnly: true }]);
  assert.equal(parseAgentArgs(['--no-default-policy'])?.defaultPolicy, false);
});

test('bad policy keys name the file and the key', () => {
  assert.throws(() => parseAgentArgs(['--config', configFile('policies: /etc/x\n')]), (e: unknown) => e instanceof ConfigError && /key 'policies'.*list of policy files/.test(e.message));
  assert.throws(() => parseAgentArgs(['--config', configFile('defaultPolicy: maybe\n')]), (e: unknown) => e instanceof ConfigError && /key 'defaultPolicy'.*true or false/.test(e.message));
  assert.throws(() => parseAgentArgs(['--config', configFile('alerts: [xml:-]\n')]), (e: unknown) => e instanceof Error && /unknown format 'xml'/.test(e.message));
});
