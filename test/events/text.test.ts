// The text rendering keeps one event on one line whatever a container puts in its strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeText } from '../../src/events/index.js';

test('escapeText: control characters, line separators and the backslash are escaped; plain text is untouched', () => {
  assert.equal(escapeText('cat /etc/passwd'), 'cat /etc/passwd');
  assert.equal(escapeText('a\nb\rc\td'), 'a\\nb\\rc\\td');
  assert.equal(escapeText('\x00\x1b[31m\x7f\x85'), '\\x00\\x1b[31m\\x7f\\x85');
  assert.equal(escapeText('x\u2028y\u2029'), 'x\\u2028y\\u2029');
  // Unambiguous: a literal backslash-n is not read back as an escaped newline.
  assert.equal(escapeText('a\\nb'), 'a\\\\nb');
  assert.notEqual(escapeText('a\\nb'), escapeText('a\nb'));
  assert.equal(escapeText('naïve 中文'), 'naïve 中文');
});
