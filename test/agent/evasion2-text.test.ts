// Names a container chose are bytes, not always UTF-8: two different names must never
// render the same (a lossy decode made every bad byte U+FFFD), and the text line shows
// the executable beside comm (which the process sets itself, PR_SET_NAME).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingForContainerTests, TEST_IMAGES } from '../helpers/host.js';
import { brief, observe, tempDir } from '../helpers/observe.js';
import { rawBytes, utf8 } from '../../src/events/utf8.js';
import { escapeText } from '../../src/events/text.js';

test('bytes that are not UTF-8 decode one-to-one and come back', () => {
  const cases = [[0x2f, 0xff], [0x2f, 0xfe], [0x2f, 0xef, 0xbf, 0xbd], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x61, 0xce, 0xbb, 0x62]];
  const decoded = cases.map((c) => utf8(Buffer.from(c)));
  assert.equal(new Set(decoded).size, cases.length, JSON.stringify(decoded));
  cases.forEach((c, i) => assert.deepEqual([...rawBytes(decoded[i] as string)], c));
  assert.equal(utf8(Buffer.from('/tmp/λ', 'utf8')), '/tmp/λ', 'valid UTF-8 is decoded as it is');
  assert.equal(escapeText(utf8(Buffer.from([0x2f, 0xff]))), '/\\xff');
  assert.equal(escapeText('/\\xff'), '/\\\\xff', 'a name spelling the escape is told apart from the byte');
  assert.equal(escapeText(utf8(Buffer.from([0x2f, 0xef, 0xbf, 0xbd]))), '/\ufffd', 'a real U+FFFD stays itself');
});

const skip = missingForContainerTests();

test('two files whose names differ only in a byte that is not UTF-8 are reported apart; the text line shows exe', { skip }, async () => {
  const textPath = join(tempDir('vigil-bytes'), 'events.txt');
  const r = await observe([['--no-default-policy', '--output', `text:${textPath}`]], {
    image: TEST_IMAGES.busybox,
    script: 'touch "/etc/x$(printf \'\\377\')" "/etc/x$(printf \'\\376\')"',
    namePrefix: 'vigil-bytes',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const events = r.agents[0]?.events ?? [];
  const opens = events.filter((e) => e.kind === 'file' && typeof e.args['path'] === 'string' && (e.args['path'] as string).startsWith('/etc/x'));
  const paths = [...new Set(opens.map((e) => e.args['path'] as string))];
  assert.equal(paths.length, 2, `two names, told apart: ${brief(opens)}`);
  assert.deepEqual(paths.map((p) => [...rawBytes(p)].slice(-1)[0]).sort(), [0xfe, 0xff]);
  const text = readFileSync(textPath, 'utf8');
  const ours = text.split('\n').filter((l) => l.includes(r.id.slice(0, 12)));
  assert.ok(ours.some((l) => l.includes('name=/etc/x\\xff')) && ours.some((l) => l.includes('name=/etc/x\\xfe')), ours.join('\n'));
  assert.ok(!ours.some((l) => l.includes('\ufffd')), 'nothing decoded lossily');
  assert.ok(ours.some((l) => l.includes('Process:{proc: touch, exe: /bin/busybox, pid: ')), ours.join('\n'));
});
