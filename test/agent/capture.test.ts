// The capture section of the config: 'default' expands to the default call set, and an
// unknown call is refused naming the key and the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CAPTURE, parseCapture } from '../../src/agent/index.js';

test("syscalls: [default, sendto] is the default set plus sendto, once each", () => {
  const c = parseCapture({ syscalls: ['default', 'sendto', 'openat'] }, 'agent.yaml: capture');
  assert.deepEqual(c.syscalls, [...DEFAULT_CAPTURE.syscalls, 'sendto']);
  assert.ok(!DEFAULT_CAPTURE.syscalls.includes('sendto'), 'sendto is opt-in');
});

test('an unknown syscall name is refused with the key that holds it', () => {
  assert.throws(() => parseCapture({ syscalls: ['default', 'opneat'] }, 'agent.yaml: capture'), /agent\.yaml: capture\.syscalls: vigil cannot capture 'opneat'/);
});
