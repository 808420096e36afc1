// The decoder against hand-built records: good ones decode field by field, bad ones
// (short, lying about their size, unknown kind) are typed errors and never stop a batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBatch, decodeRecord, DecodeError, renderText, type RawRecord, type VigilEvent } from '../../src/events/index.js';
import { CGROUP_LAYOUT, EXEC_LAYOUT, EXIT_LAYOUT, FLAG_CONTAINER_SETUP, HEADER_LAYOUT, RECORD_KIND, STDIO_KIND } from '../../src/events/layout.js';

function header(kind: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  const H = HEADER_LAYOUT;
  b.writeUInt16LE(kind, H.kind);
  b.writeUInt32LE(size, H.size_field);
  b.writeBigUInt64LE(123456789n, H.time_ns);
  b.writeUInt32LE(4242, H.pid);
  b.writeUInt32LE(4242, H.tgid);
  b.writeUInt32LE(7, H.ns_pid);
  b.writeUInt32LE(4200, H.ppid);
  b.writeBigUInt64LE(0b1n | (1n << 21n), H.cap_effective);
  b.writeBigUInt64LE(99n, H.container_key);
  b.write('cat', H.comm);
  b.write('bash', H.parent_comm);
  return b;
}

function execRecord(argv: string[], filename: string): Buffer {
  const args = Buffer.from(argv.join('\0') + '\0');
  const b = header(RECORD_KIND.EXEC, EXEC_LAYOUT.args + args.length);
  b.writeUInt32LE(filename.length, EXEC_LAYOUT.filename_len);
  b.writeUInt32LE(args.length, EXEC_LAYOUT.args_len);
  b.writeUInt32LE(args.length, EXEC_LAYOUT.args_total);
  b.write(filename, EXEC_LAYOUT.filename);
  args.copy(b, EXEC_LAYOUT.args);
  return b;
}

test('an exec record decodes every field', () => {
  const buf = execRecord(['cat', '/etc/passwd'], '/bin/cat');
  const r = decodeRecord(buf, 0, buf.length);
  assert.equal(r.kind, 'exec');
  if (r.kind !== 'exec') return;
  assert.equal(r.filename, '/bin/cat');
  assert.deepEqual(r.argv, ['cat', '/etc/passwd']);
  assert.equal(r.argvTruncated, false);
  assert.equal(r.task.comm, 'cat');
  assert.equal(r.task.parentComm, 'bash');
  assert.equal(r.task.nsPid, 7);
  assert.equal(r.task.containerKey, 99n);
  assert.equal(r.task.capEffective, (1n << 21n) | 1n);
  assert.equal(r.task.containerSetup, false);
  buf.writeUInt16LE(FLAG_CONTAINER_SETUP, HEADER_LAYOUT.flags);
  const setup = decodeRecord(buf, 0, buf.length);
  assert.equal(setup.task.containerSetup, true, 'the header flag marks the runtime setting the container up');
  assert.equal(setup.task.truncated, false);
});

test("an exec record's stdio codes decode to names; a code this side does not know is 'other'", () => {
  const buf = execRecord(['sh'], '/bin/sh');
  const none = decodeRecord(buf, 0, buf.length);
  assert.deepEqual(none.kind === 'exec' && none.stdio, ['none', 'none', 'none']);
  const names = ['none', 'file', 'dir', 'tty', 'chr', 'pipe', 'unix', 'inet', 'inet6', 'socket', 'other'];
  assert.deepEqual(Object.keys(STDIO_KIND).map((k) => k.toLowerCase()), names);
  for (const [name, code] of Object.entries(STDIO_KIND)) {
    buf.fill(code, EXEC_LAYOUT.stdio, EXEC_LAYOUT.stdio + 3);
    const r = decodeRecord(buf, 0, buf.length);
    assert.deepEqual(r.kind === 'exec' && r.stdio, [name.toLowerCase(), name.toLowerCase(), name.toLowerCase()]);
  }
  buf.writeUInt8(STDIO_KIND.INET, EXEC_LAYOUT.stdio);
  buf.writeUInt8(STDIO_KIND.TTY, EXEC_LAYOUT.stdio + 1);
  buf.writeUInt8(200, EXEC_LAYOUT.stdio + 2);
  const mixed = decodeRecord(buf, 0, buf.length);
  assert.deepEqual(mixed.kind === 'exec' && mixed.stdio, ['inet', 'tty', 'other']);
});

test('a batch with a bad record in the middle keeps the good ones', () => {
  const good = execRecord(['ls'], '/bin/ls');
  const unknown = header(77, HEADER_LAYOUT.size);
  const exit = header(RECORD_KIND.EXIT, EXIT_LAYOUT.size);
  exit.writeInt32LE((3 << 8) | 0, EXIT_LAYOUT.exit_code);
  const got: RawRecord[] = [];
  const errors: DecodeError[] = [];
  decodeBatch(Buffer.concat([good, unknown, exit]), (r) => got.push(r), (e) => errors.push(e));
  assert.deepEqual(got.map((r) => r.kind), ['exec', 'exit']);
  assert.equal(got[1]?.kind === 'exit' && got[1].exitCode, 3);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /unknown record kind 77/);
});

test('records that lie about their size are typed errors, never a crash', () => {
  const short = header(RECORD_KIND.EXEC, HEADER_LAYOUT.size); // exec needs more bytes
  assert.throws(() => decodeRecord(short, 0, short.length), DecodeError);
  const liar = execRecord(['x'], '/x');
  liar.writeUInt32LE(5000, EXEC_LAYOUT.args_len);
  assert.throws(() => decodeRecord(liar, 0, liar.length), /argv bytes/);
  const errors: DecodeError[] = [];
  const overrun = header(RECORD_KIND.FORK, 120);
  overrun.writeUInt32LE(1 << 20, HEADER_LAYOUT.size_field);
  decodeBatch(overrun, () => assert.fail('nothing decodes'), (e) => errors.push(e));
  assert.match(errors[0]!.message, /beyond the batch/);
  // Random bytes: only DecodeError may come out.
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: 8 + Math.floor(Math.random() * 400) }, () => Math.floor(Math.random() * 256)));
    if (i % 2 === 0) junk.writeUInt32LE(Math.min(junk.length, HEADER_LAYOUT.size + (i % 50)), HEADER_LAYOUT.size_field % junk.length);
    decodeBatch(junk, () => {}, (e) => assert.ok(e instanceof DecodeError));
  }
});

test('text rendering follows the paper line format', () => {
  const e: VigilEvent = {
    seq: 1, time: '1697008319216479547', host: 'h1', kind: 'exec', syscall: 'execve',
    args: { filename: '/bin/cat', argv: ['cat', '/etc/passwd'] }, ret: 0,
    container: { id: 'a3da9f2deb4b0123456789', name: 'vigilant_carver', image: 'ubuntu', runtime: 'docker' },
    process: { pid: 593176, nsPid: 7, ppid: 593100, parent: 'bash', comm: 'cat', exe: '/bin/cat', args: ['cat', '/etc/passwd'], argsTruncated: false, uid: 0, gid: 0, caps: ['CHOWN', 'DAC_OVERRIDE'], containerSetup: false, ancestors: ['bash'], entered: false, stdio: [], exeWritten: false, exeInImage: true, parentExe: '/bin/bash', name: 'cat' },
    namespaces: { mnt: 1, pid: 2, cgroupId: '1', containerKey: '99' },
    verdict: { level: 'INSECURE', rules: ['opening passwd'], action: 'none' },
  };
  const line = renderText(e);
  assert.match(line, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[INSECURE\] Unsafe:\[opening passwd\], Event:\{host:h1, syscall: execve, args:filename=\/bin\/cat argv=cat \/etc\/passwd, ret: 0, time: 1697008319216479547\}, Container:\{image: ubuntu, id: a3da9f2deb4b, name: vigilant_carver\}, Process:\{proc: cat, exe: \/bin\/cat, pid: 593176, parent: bash, args: cat \/etc\/passwd, caps: CHOWN,DAC_OVERRIDE\}$/);
  assert.match(renderText({ ...e, verdict: { level: 'NORMAL', rules: [], action: 'none' } }), / \[NORMAL\] Event:\{host:h1,/);
});

test('a cgroup record decodes its id, level and path; a path longer than its size allows is a typed error', () => {
  const path = '/docker/' + 'ab'.repeat(32);
  const size = (CGROUP_LAYOUT.path + path.length + 7) & ~7;
  const b = header(RECORD_KIND.CGROUP, size);
  b.writeBigUInt64LE(4242n, HEADER_LAYOUT.container_key);
  b.writeBigUInt64LE(4242n, CGROUP_LAYOUT.id);
  b.writeUInt32LE(2, CGROUP_LAYOUT.level);
  b.writeUInt32LE(path.length, CGROUP_LAYOUT.path_len);
  b.write(path, CGROUP_LAYOUT.path);
  const r = decodeRecord(b, 0, b.length);
  assert.equal(r.kind, 'cgroup');
  if (r.kind !== 'cgroup') return;
  assert.equal(r.id, 4242n);
  assert.equal(r.task.containerKey, 4242n);
  assert.equal(r.level, 2);
  assert.equal(r.path, path);
  assert.equal(r.pathTruncated, false);
  b.writeUInt32LE(size, CGROUP_LAYOUT.path_len);
  assert.throws(() => decodeRecord(b, 0, b.length), DecodeError);
});
