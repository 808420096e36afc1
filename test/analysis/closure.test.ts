// What can run and what the loader maps, on hand-made images: a `#!` script's interpreter and
// its literal commands found on the image's PATH, `sh -c` strings, DT_NEEDED found through
// the image's ld.so.conf (with include) and through DT_RUNPATH-free default directories,
// NSS modules named by nsswitch.conf, and an image-relative PT_INTERP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { analyzeLoaded, imageFromArchive } from '../../src/analysis/index.js';
import { dockerSave, tar, type Entry } from './tar-writer.js';

const BUSYBOX = '/bin/busybox';
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';
const LDSO = '/lib64/ld-linux-x86-64.so.2';
const skip = [BUSYBOX, LIBC, LDSO, '/bin/true'].find((f) => !existsSync(f));
const opts = { cacheDir: false as const };

function image(entries: Entry[], config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[] }) {
  return imageFromArchive(dockerSave([tar(entries)], config), 'fixture');
}

test('a #! script: its interpreter and the literal commands it runs, looked up on PATH', { skip: skip && `${skip} missing` }, () => {
  const script = '#!/bin/sh\nset -e\n# a comment naming /bin/never\nFOO=1 helper --flag "$1" && echo done\nif true; then exec /opt/tool; fi\n$DYNAMIC arg\n';
  const r = analyzeLoaded(image([
    { name: 'bin/busybox', data: readFileSync(BUSYBOX) },
    { name: 'bin/sh', type: '2', linkname: 'busybox' },
    { name: 'usr/local/bin/helper', data: readFileSync(BUSYBOX) },
    { name: 'opt/tool', type: '2', linkname: '/bin/busybox' },
    { name: 'entry.sh', data: Buffer.from(script) },
  ], { Entrypoint: ['/entry.sh'], Env: ['PATH=/usr/local/bin:/bin'] }), opts);
  const paths = r.programs.map((p) => `${p.path} <- ${p.reason}`);
  assert.ok(paths.includes('/bin/busybox <- #! interpreter of /entry.sh'), paths.join('\n'));
  assert.ok(paths.includes('/usr/local/bin/helper <- command in the script /entry.sh'), paths.join('\n'));
  assert.ok(!r.programs.some((p) => p.path.includes('never')));
});

test('sh -c strings: the commands of the string run too', { skip: skip && `${skip} missing` }, () => {
  const r = analyzeLoaded(image([
    { name: 'bin/busybox', data: readFileSync(BUSYBOX) },
    { name: 'bin/sh', type: '2', linkname: 'busybox' },
    { name: 'usr/bin/worker', data: readFileSync(BUSYBOX) },
  ], { Cmd: ['/bin/sh', '-c', 'cd /tmp; worker --once || exit 1'], Env: ['PATH=/usr/bin:/bin'] }), opts);
  assert.deepEqual(r.programs.map((p) => p.path).sort(), ['/bin/busybox', '/usr/bin/worker']);
});

test('DT_NEEDED through the image ld.so.conf include; PT_INTERP inside the image; NSS modules', { skip: skip && `${skip} missing` }, () => {
  const r = analyzeLoaded(image([
    { name: 'usr/bin/true', data: readFileSync('/bin/true') },
    { name: 'lib64/ld-linux-x86-64.so.2', data: readFileSync(LDSO) },
    { name: 'opt/glibc/libc.so.6', data: readFileSync(LIBC) },
    { name: 'opt/glibc/libnss_compat.so.2', data: readFileSync(LIBC) },
    { name: 'etc/ld.so.conf', data: Buffer.from('include /etc/ld.so.conf.d/*.conf\n') },
    { name: 'etc/ld.so.conf.d/glibc.conf', data: Buffer.from('# where libc lives\n/opt/glibc\n') },
    { name: 'etc/nsswitch.conf', data: Buffer.from('passwd: compat [NOTFOUND=return] files\n') },
  ], { Cmd: ['true'], Env: ['PATH=/usr/bin'] }), opts);
  const mods = r.programs[0]!.modules.map((m) => `${m.path} <- ${m.reason}`);
  assert.deepEqual(mods, [
    '/usr/bin/true <- entrypoint/cmd',
    '/lib64/ld-linux-x86-64.so.2 <- PT_INTERP of /usr/bin/true',
    '/opt/glibc/libc.so.6 <- DT_NEEDED of /usr/bin/true',
    '/opt/glibc/libnss_compat.so.2 <- NSS module named in /etc/nsswitch.conf',
  ]);
  assert.ok(r.syscalls.includes('exit_group') && r.syscalls.includes('write'));
  assert.ok(r.sources['mmap']!.some((s) => s.file === '/lib64/ld-linux-x86-64.so.2'), 'the loader maps the libraries');
});
