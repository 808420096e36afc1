// The cached JSON-lines renderer writes exactly what JSON.stringify would, and never
// serves a cached rendering of an object that could still change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderJson, type VigilEvent } from '../../src/events/index.js';

function event(over: Partial<VigilEvent> = {}): VigilEvent {
  return {
    seq: 7,
    time: '1795917832197898268',
    host: 'node-"a"',
    kind: 'file',
    syscall: 'openat',
    args: { dirfd: '-100(AT_FDCWD)', path: '/etc/\u00e9\n"x"', flags: 'O_RDONLY', mode: 0, argv: ['a', 'b\\c'] },
    ret: -2,
    error: 'ENOENT',
    container: Object.freeze({ id: 'abc', name: 'n', image: 'vigil-test/bash:2', runtime: 'docker' }),
    process: {
      pid: 10, nsPid: 1, ppid: 9, parent: 'runc', comm: 'cat', exe: '/usr/bin/cat',
      args: Object.freeze(['cat', '/etc/passwd', 'tab\there']), argsTruncated: false, uid: 0, gid: 0,
      caps: Object.freeze(['CHOWN', 'SYS_ADMIN']), containerSetup: true,
      ancestors: Object.freeze(['runc', 'sh']), entered: true, stdio: Object.freeze(['inet', 'inet', 'pipe']), exeWritten: false, exeInImage: false, parentExe: '/usr/bin/"q"', name: 'cat',
    },
    namespaces: { mnt: 4026532180, pid: 4026531836, cgroupId: '2571', containerKey: '10298' },
    verdict: { level: 'NORMAL', rules: [], action: 'none' },
    ...over,
  };
}

test('renderJson equals JSON.stringify, with and without optional fields', () => {
  const withError = event();
  assert.equal(renderJson(withError), JSON.stringify(withError));
  const { error: _dropped, ...noError } = withError;
  assert.equal(renderJson(noError as VigilEvent), JSON.stringify(noError));
  const undefinedError = event({ error: undefined });
  assert.equal(renderJson(undefinedError), JSON.stringify(undefinedError));
  const lost = event({ kind: 'lost', ret: null, args: { record_kind: 'syscall', lost: '12' } });
  assert.equal(renderJson(lost), JSON.stringify(lost));
  assert.deepEqual(JSON.parse(renderJson(withError)), withError);
});

test('a shared frozen part is rendered once and reused; an unfrozen one is rendered afresh', () => {
  const container = Object.freeze({ id: 'c1', name: 'first', image: 'i', runtime: 'docker' });
  const a = event({ container });
  assert.equal(renderJson(a), JSON.stringify(a));
  assert.equal(renderJson(event({ container })), JSON.stringify(event({ container })));
  const mutable = { id: 'c2', name: 'before', image: 'i', runtime: 'docker' };
  const b = event({ container: mutable });
  assert.match(renderJson(b), /"name":"before"/);
  mutable.name = 'after';
  assert.match(renderJson(b), /"name":"after"/, 'an unfrozen object is not cached');
});
