// The policy guide lists every default rule: a rule added or renamed without its line in
// docs/policy.md fails here, so the guide cannot drift from the rule set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadPolicies, DEFAULT_POLICY_DIR } from '../../src/policy/index.js';

test('docs/policy.md has a row for every default rule, and the default set has at least 25 rules', () => {
  const guide = readFileSync(join(dirname(dirname(DEFAULT_POLICY_DIR)), 'docs', 'policy.md'), 'utf8');
  const rules = loadPolicies([]).set.list();
  assert.ok(rules.length >= 25, `${rules.length} default rules`);
  const missing = rules.filter((r) => !guide.includes(`| \`${r.name}\` |`)).map((r) => r.name);
  assert.deepEqual(missing, [], 'default rules without a row in docs/policy.md');
});
