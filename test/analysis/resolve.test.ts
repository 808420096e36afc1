// The resolution of system-call numbers in code built here: wrappers taking the number in a
// register (rdi, rax, rsi; a wrapper of a wrapper by tail jump), a callee-saved register kept
// across a call, a site whose number comes from memory (unresolved, with its reason), and
// glibc's syscall() called through the PLT of a dynamic executable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeLoaded, imageFromArchive, parseElf, seccompProfile, summarize } from '../../src/analysis/index.js';
import { dockerSave, tar } from './tar-writer.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'analysis', 'fixtures');
const skip = spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : 'gcc is not installed';
const WRAPPERS = new Map([['syscall', 'rdi']]);

function build(args: string[]): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-resolve-'));
  const file = join(dir, 'a.out');
  execFileSync('gcc', [...args, '-o', file]);
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('wrappers in rdi, rax and rsi, a tail-jump chain and a callee-saved register are resolved at their callers', { skip }, () => {
  const { file, done } = build(['-nostdlib', '-static', '-no-pie', join(fixtures, 'wrappers.S')]);
  try {
    const s = summarize(parseElf(readFileSync(file), file), WRAPPERS);
    const numbers = [...new Set(s.syscalls.map(([, n]) => n))].sort((a, b) => a - b);
    assert.deepEqual(numbers, [39, 60, 102, 104, 110, 186]);
    assert.equal(s.unresolved.length, 1, JSON.stringify(s.unresolved));
    assert.match(s.unresolved[0]!.reason, /mov rax,\[rsp\] sets rax/);
  } finally {
    done();
  }
});

test("glibc's syscall() called through the PLT is resolved at the caller", { skip }, () => {
  const { file, done } = build(['-O1', join(fixtures, 'libc-syscall.c')]);
  try {
    const s = summarize(parseElf(readFileSync(file), file), WRAPPERS);
    const numbers = new Set(s.syscalls.map(([, n]) => n));
    assert.ok(numbers.has(110) && numbers.has(140), `found ${[...numbers].join(',')}`);
    assert.deepEqual(s.unresolved, []);
  } finally {
    done();
  }
});

const libc = '/lib/x86_64-linux-gnu/libc.so.6';
test("Debian's libc exports syscall() as a wrapper in rdi and has no unresolved site", { skip: existsSync(libc) ? undefined : `${libc} missing` }, () => {
  const s = summarize(parseElf(readFileSync(libc), libc), WRAPPERS);
  assert.deepEqual(s.wrappers, [{ name: 'syscall', reg: 'rdi' }]);
  assert.deepEqual(s.unresolved, []);
  assert.ok(s.syscallSites > 400, `${s.syscallSites} syscall sites`);
});

test('an unresolved site makes the list unenforceable by default (fail-open) and not with fail-closed', { skip }, () => {
  const { file, done } = build(['-nostdlib', '-static', '-no-pie', join(fixtures, 'wrappers.S')]);
  try {
    const img = imageFromArchive(dockerSave([tar([{ name: 'app', data: readFileSync(file) }])], { Entrypoint: ['/app'] }), 'fixture');
    const open = analyzeLoaded(img, { cacheDir: false });
    assert.equal(open.allowAll, true);
    assert.deepEqual(open.unresolved.map((u) => u.file), ['/app']);
    assert.equal(seccompProfile(open).defaultAction, 'SCMP_ACT_ALLOW');
    const closed = analyzeLoaded(img, { cacheDir: false, unresolved: 'closed' });
    assert.equal(closed.allowAll, false);
    assert.equal(seccompProfile(closed).defaultAction, 'SCMP_ACT_ERRNO');
    for (const s of ['getpid', 'getuid', 'gettid', 'getppid', 'getgid', 'exit']) assert.ok(closed.syscalls.includes(s), s);
  } finally {
    done();
  }
});
