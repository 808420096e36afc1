// Malformed policies are rejected with FILE:LINE:COL pointing at the token at fault, the
// same through the library (loadPolicies) and through `vigil policy check`; a good policy
// and the README's example pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVigil } from '../helpers/agent-process.js';
import { loadPolicies, PolicyError, readPolicyText, type PolicyProblem } from '../../src/policy/index.js';
import type { VigilEvent } from '../../src/events/index.js';

const root = mkdtempSync(join(tmpdir(), 'vigil-policy-errors-'));
let caseNo = 0;

/** Writes the files of one case into a fresh directory; returns their paths in order. */
function writeCase(files: Record<string, string>): { dir: string; paths: string[] } {
  const dir = join(root, `case-${++caseNo}`);
  mkdirSync(dir);
  const paths = Object.entries(files).map(([name, text]) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  });
  return { dir, paths };
}

/**
 * Where a token is: `needle` is text of the file with the token marked by « », e.g.
 * 'process.«foo» ==' is the position of `foo` in the first place the file has `process.foo ==`.
 */
function locate(text: string, needle: string, occurrence = 1): { line: number; col: number } {
  const plain = needle.replace(/[«»]/g, '');
  const mark = needle.indexOf('«');
  assert.ok(mark >= 0, `needle ${needle} has no «mark»`);
  let at = -1;
  for (let i = 0; i < occurrence; i++) {
    at = text.indexOf(plain, at + 1);
    assert.ok(at >= 0, `'${plain}' (occurrence ${i + 1}) not in the file:\n${text}`);
  }
  const offset = at + mark;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

interface Expected {
  /** Which file of the case (its name). */
  file: string;
  /** The token, marked with « » in surrounding text (see locate). */
  at: string;
  occurrence?: number;
  message: RegExp;
}

interface Case {
  title: string;
  files: Record<string, string>;
  problems: Expected[];
}

const HEAD = (name: string) => `apiVersion: vigil.dev/v1\nkind: Policy\nmetadata: {name: ${name}}\n`;
const ruleDoc = (name: string, ruleLines: string) => `${HEAD(name)}spec:\n  rules:\n${ruleLines}`;

const CASES: Case[] = [
  {
    title: 'YAML syntax: a nested mapping in a compact one',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n    severity: high: x\n') },
    problems: [{ file: 'a.yaml', at: 'severity: «high: x', message: /^YAML: Nested mappings are not allowed/ }],
  },
  {
    title: 'YAML syntax: a key indented off its mapping',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n   severity: high\n') },
    problems: [{ file: 'a.yaml', at: '   «severity: high', message: /^YAML: Sequence item without - indicator$/ }],
  },
  {
    title: 'YAML syntax: a tab as indentation',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n\tseverity: high\n') },
    problems: [{ file: 'a.yaml', at: '«\tseverity: high', message: /^YAML: Tabs are not allowed as indentation$/ }],
  },
  {
    title: 'unknown key at the top level',
    files: { 'a.yaml': `${HEAD('p')}specs:\n  rules: []\n` },
    problems: [
      { file: 'a.yaml', at: '«apiVersion', message: /^missing spec$/ },
      { file: 'a.yaml', at: '«specs:', message: /^a policy document: unknown key 'specs'; known keys are apiVersion, kind, metadata, spec$/ },
    ],
  },
  {
    title: 'unknown key in spec',
    files: { 'a.yaml': `${HEAD('p')}spec:\n  selectors: {image: x}\n  rules: []\n` },
    problems: [{ file: 'a.yaml', at: '  «selectors:', message: /^spec: unknown key 'selectors'; known keys are selector, rules, overrides, lists, macros, allowlist$/ }],
  },
  {
    title: 'unknown key in a rule (and so no condition)',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condtion: kind == "exec"\n') },
    problems: [
      { file: 'a.yaml', at: '- «name: r', message: /^rule 'r': missing condition$/ },
      { file: 'a.yaml', at: '    «condtion:', message: /^a rule: unknown key 'condtion'; known keys are name, description, kinds, condition/ },
    ],
  },
  {
    title: 'CEL syntax error (plain scalar)',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == == "exec"\n') },
    problems: [{ file: 'a.yaml', at: 'kind == «== "exec"', message: /^rule 'r': CEL syntax: Unexpected token: EQ$/ }],
  },
  {
    title: 'CEL syntax error on the second line of a literal block (|)',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: |\n      kind == "exec" &&\n      process.comm == "sh" &&& true\n') },
    problems: [{ file: 'a.yaml', at: '"sh" &&«& true', message: /^rule 'r': CEL syntax: Unexpected character: &$/ }],
  },
  {
    title: 'CEL syntax error at the end of the expression (unclosed parenthesis)',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec" && (process.comm == "sh"\n') },
    problems: [{ file: 'a.yaml', at: '(process.comm == "sh"«\n', message: /^rule 'r': CEL syntax: Expected RPAREN, got EOF$/ }],
  },
  {
    title: 'CEL type error: a string compared with an int points at the operator',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: process.comm == 1\n') },
    problems: [{ file: 'a.yaml', at: 'process.comm «== 1', message: /^rule 'r': CEL type: no such overload: string == int$/ }],
  },
  {
    title: 'CEL type error on a folded line of a >- block, after a more-indented line',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    kinds: [exec]\n    condition: >-\n      kind == "exec" &&\n        process.comm == "sh" &&\n      process.uid == "0"\n') },
    problems: [{ file: 'a.yaml', at: 'process.uid «== "0"', message: /^rule 'r': CEL type: no such overload: int == string$/ }],
  },
  {
    title: 'CEL type error: a method called with the wrong argument points at the method',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec" && process.exe.startsWith(1)\n') },
    problems: [{ file: 'a.yaml', at: 'process.exe.«startsWith(1)', message: /^rule 'r': CEL type: found no matching overload for 'string.startsWith\(int\)'$/ }],
  },
  {
    title: 'unknown event field (plain)',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: process.foo == "x"\n') },
    problems: [{ file: 'a.yaml', at: 'process.«foo', message: /^rule 'r': CEL type: unknown event field 'foo'$/ }],
  },
  {
    title: 'unknown event field in a double-quoted scalar with escapes before it',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: "kind == \\"file\\" && args.path == \\"\\t\\" && process.foo == \\"x\\""\n') },
    problems: [{ file: 'a.yaml', at: 'process.«foo', message: /unknown event field 'foo'$/ }],
  },
  {
    title: "unknown event field in a single-quoted scalar with '' escapes before it",
    files: { 'a.yaml': ruleDoc('p', "  - name: r\n    condition: 'kind == ''file'' && args.path == ''x'' && process.foo == \"x\"'\n") },
    problems: [{ file: 'a.yaml', at: 'process.«foo', message: /unknown event field 'foo'$/ }],
  },
  {
    title: 'unknown event field in a double-quoted scalar folded over lines',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: "kind == \\"file\\" &&\n      container.nme == \\"x\\""\n') },
    problems: [{ file: 'a.yaml', at: 'container.«nme', message: /unknown event field 'nme'$/ }],
  },
  {
    title: 'unknown event field in a literal block (|) on a more-indented line',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: |\n      kind == "file" &&\n        (process.comm == "cat" ||\n         process.parnt == "sh")\n') },
    problems: [{ file: 'a.yaml', at: 'process.«parnt', message: /unknown event field 'parnt'$/ }],
  },
  {
    title: 'unknown list (an unknown name) in a condition',
    files: { 'a.yaml': `${HEAD('p')}spec:\n  lists:\n    shells: [sh, bash]\n  rules:\n  - name: r\n    condition: >-\n      kind == "exec" &&\n      process.comm in shellz\n` },
    problems: [{ file: 'a.yaml', at: 'process.comm in «shellz', message: /^rule 'r': CEL type: unknown name 'shellz': not an event field .*, a list \(shells\) or a macro$/ }],
  },
  {
    title: 'an unknown name in an exception',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n    exceptions:\n    - process.comm in allowed\n') },
    problems: [{ file: 'a.yaml', at: 'process.comm in «allowed', message: /^rule 'r', exception #1: CEL type: unknown name 'allowed'/ }],
  },
  {
    title: 'duplicate rule name within one file',
    files: { 'a.yaml': ruleDoc('p', '  - name: r one\n    condition: kind == "exec"\n  - condition: kind == "file"\n    name: r one\n') },
    problems: [{ file: 'a.yaml', at: '    name: «r one', message: /^rule 'r one' is already defined at .*a\.yaml:6; change it with an override/ }],
  },
  {
    title: 'duplicate rule name across two files',
    files: {
      'a.yaml': ruleDoc('pa', '  - name: shared\n    condition: kind == "exec"\n'),
      'b.yaml': ruleDoc('pb', '  - name: other\n    condition: kind == "file"\n  - name: shared\n    condition: kind == "file"\n'),
    },
    problems: [{ file: 'b.yaml', at: '- name: «shared', message: /^rule 'shared' is already defined at .*a\.yaml:6;/ }],
  },
  {
    title: 'duplicate policy name across two files',
    files: { 'a.yaml': `${HEAD('same')}spec: {}\n`, 'b.yaml': `${HEAD('same')}spec: {}\n` },
    problems: [{ file: 'b.yaml', at: 'metadata: {name: «same}', message: /^policy name 'same' is already used by .*a\.yaml:3$/ }],
  },
  {
    title: 'append to a list no earlier policy defines',
    files: { 'a.yaml': `${HEAD('p')}spec:\n  lists:\n    shells: [sh]\n    shels: {append: [zsh]}\n` },
    problems: [{ file: 'a.yaml', at: '    «shels: {append', message: /^list shels: append to a list no earlier policy defines$/ }],
  },
  {
    title: 'override of an unknown rule',
    files: { 'a.yaml': `${HEAD('p')}spec:\n  rules:\n  - name: execve shell\n    condition: kind == "exec"\n  overrides:\n  - enabled: false\n    rule: execve shel\n` },
    problems: [{ file: 'a.yaml', at: 'rule: «execve shel\n', message: /^override of unknown rule 'execve shel'; did you mean 'execve shell'\?$/ }],
  },
  {
    title: 'bad severity',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n    severity: severe\n') },
    problems: [{ file: 'a.yaml', at: 'severity: «severe', message: /^rule 'r': severity must be one of info, low, medium, high, critical, not 'severe'$/ }],
  },
  {
    title: 'bad action',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    condition: kind == "exec"\n    action: block\n') },
    problems: [{ file: 'a.yaml', at: 'action: «block', message: /^rule 'r': action must be one of log, alert, isolate, pause, stop, kill, not 'block'$/ }],
  },
  {
    title: 'bad kinds: an unknown kind in the list',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    kinds: [exec, proces, file]\n    condition: kind == "exec"\n') },
    problems: [{ file: 'a.yaml', at: 'kinds: [exec, «proces', message: /^rule 'r': unknown event kind 'proces'; kinds are exec, fork, exit/ }],
  },
  {
    title: 'bad kinds: not a list of strings',
    files: { 'a.yaml': ruleDoc('p', '  - name: r\n    kinds: {exec: true}\n    condition: kind == "exec"\n') },
    problems: [{ file: 'a.yaml', at: 'kinds: «{exec', message: /^rule 'r': kinds must be a list of non-empty strings$/ }],
  },
  {
    title: 'an error in a macro points into the macro',
    files: { 'a.yaml': `${HEAD('p')}spec:\n  macros:\n    is_shell: process.com == "sh"\n  rules:\n  - name: r\n    condition: kind == "exec" && is_shell\n` },
    problems: [
      { file: 'a.yaml', at: 'process.«com ==', message: /^CEL type: unknown event field 'com'$/ },
      { file: 'a.yaml', at: '&& «is_shell', message: /^rule 'r': CEL type: macro 'is_shell' cannot be used: its own condition has an error/ },
    ],
  },
  {
    title: 'problems in two files are all reported, in load order',
    files: {
      'a.yaml': ruleDoc('pa', '  - name: ra\n    condition: kind == "exec"\n    severity: hgh\n'),
      'b.yaml': ruleDoc('pb', '  - name: rb\n    condition: process.nspid == 1\n'),
    },
    problems: [
      { file: 'a.yaml', at: 'severity: «hgh', message: /severity must be one of/ },
      { file: 'b.yaml', at: 'process.«nspid', message: /unknown event field 'nspid'/ },
    ],
  },
];

function expectedProblems(c: Case, paths: string[]): PolicyProblem[] {
  const names = Object.keys(c.files);
  return c.problems.map((p) => {
    const i = names.indexOf(p.file);
    const where = locate(c.files[p.file] as string, p.at, p.occurrence);
    return { file: paths[i] as string, line: where.line, col: where.col, message: p.message.source };
  });
}

function assertProblems(actual: ReadonlyArray<{ file: string; line: number; col: number; message: string }>, c: Case, paths: string[], how: string): void {
  const expected = expectedProblems(c, paths);
  const show = (ps: ReadonlyArray<{ file: string; line: number; col: number; message: string }>) => ps.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}`).join('\n');
  assert.equal(actual.length, expected.length, `${how}: expected ${expected.length} problems, got:\n${show(actual)}`);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    assert.equal(`${a.file}:${a.line}:${a.col}`, `${e.file}:${e.line}:${e.col}`, `${how}: problem ${i + 1} at the wrong place: ${a.message}\n(all: ${show(actual)})`);
    assert.match(a.message, c.problems[i]!.message, `${how}: problem ${i + 1}`);
  });
}

for (const c of CASES) {
  test(`rejected with FILE:LINE:COL: ${c.title}`, async () => {
    const { paths } = writeCase(c.files);
    // The library.
    let error: unknown;
    try {
      loadPolicies(paths, { defaults: false });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof PolicyError, `loadPolicies did not throw a PolicyError: ${String(error)}`);
    assertProblems(error.problems, c, paths, 'loadPolicies');
    // The command: every problem on stderr as FILE:LINE:COL: message, exit 1.
    const r = await runVigil(['policy', 'check', '--no-default-policy', ...paths]);
    assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n').map((l) => {
      const m = /^(.+?):(\d+):(\d+): (.*)$/.exec(l);
      assert.ok(m, `not a FILE:LINE:COL: message line: ${l}`);
      return { file: m[1] as string, line: Number(m[2]), col: Number(m[3]), message: m[4] as string };
    });
    assertProblems(lines, c, paths, 'vigil policy check');
  });
}

test('the same problem is found with the default rules loaded first', async () => {
  const c = CASES.find((x) => x.title.startsWith('unknown list'))!;
  const { paths } = writeCase(c.files);
  const r = await runVigil(['policy', 'check', ...paths]);
  assert.equal(r.code, 1, r.stderr);
  const where = locate(c.files['a.yaml']!, 'process.comm in «shellz');
  assert.match(r.stderr.trim(), new RegExp(`^${paths[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${where.line}:${where.col}: rule 'r': CEL type: unknown name 'shellz'.*a list \\(.*shell_binaries.*\\)`));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

// Every non-space character of a condition maps back to the same character in the file,
// whatever the scalar's style.
test('condition offsets map back to the file for plain, quoted, folded and literal scalars', () => {
  const condition = 'kind == "file" && args.path == "/etc/x" && process.comm in ["cat", "sh"]';
  const styles: Record<string, string> = {
    plain: `    condition: ${condition}\n`,
    'plain over lines': `    condition: kind == "file" &&\n      args.path == "/etc/x" &&\n      process.comm in ["cat", "sh"]\n`,
    'double-quoted': `    condition: "${condition.replace(/"/g, '\\"')}"\n`,
    'double-quoted over lines': `    condition: "kind == \\"file\\" &&\n      args.path == \\"/etc/x\\"\n      && process.comm in [\\"cat\\", \\"sh\\"]"\n`,
    'single-quoted': `    condition: '${condition.replace(/"/g, "''")}'\n`,
    'folded >-': `    condition: >-\n      kind == "file" &&\n      args.path == "/etc/x" &&\n      process.comm in ["cat", "sh"]\n`,
    'folded > with a comment': `    condition: > # the rule\n      kind == "file" &&\n        args.path == "/etc/x" &&\n      process.comm in ["cat", "sh"]\n`,
    'literal |': `    condition: |\n      kind == "file" &&\n        args.path == "/etc/x" &&\n      process.comm in ["cat", "sh"]\n`,
    'literal |2-': `    condition: |2-\n        kind == "file" &&\n        args.path == "/etc/x" &&\n        process.comm in ["cat", "sh"]\n`,
  };
  for (const [style, line] of Object.entries(styles)) {
    const text = ruleDoc('p', `  - name: r\n${line}`);
    const problems: PolicyProblem[] = [];
    const docs = readPolicyText(text, 'x.yaml', problems);
    assert.deepEqual(problems, [], style);
    const src = docs[0]!.rules[0]!.condition;
    const lines = text.split('\n');
    for (let i = 0; i < src.text.length; i++) {
      const ch = src.text[i] as string;
      if (/\s/.test(ch)) continue;
      const p = src.at(i);
      const inFile = lines[p.line - 1]?.[p.col - 1];
      // In quoted scalars a quote of the value is written escaped: \" or ''.
      const ok = inFile === ch || (ch === '"' && inFile === '\\') || (ch === "'" && inFile === "'");
      assert.ok(ok, `${style}: value offset ${i} ('${ch}') maps to ${p.line}:${p.col} ('${inFile}')`);
    }
    // An error at the end of the expression points just past its last character.
    const end = src.at(src.text.length);
    const last = src.at(src.text.trimEnd().length - 1);
    assert.ok(end.line > last.line || end.col > last.col, `${style}: end ${end.line}:${end.col} is not after ${last.line}:${last.col}`);
  }
});

const GOOD = `# A policy for the web tier: every kind of part once.
apiVersion: vigil.dev/v1
kind: Policy
metadata:
  name: web-tier
  description: rules for the web containers
spec:
  selector:
    image: ["registry.example/web/*"]
    labels: {tier: web}
  lists:
    web_shells: [sh, bash]
    shell_binaries: {append: [busybox]}
  macros:
    web_process: process.comm in ["nginx", "php-fpm"]
  rules:
  - name: web shell
    description: a shell under the web server
    kinds: [exec]
    condition: >-
      process.comm in web_shells &&
      process.parent in ["nginx", "php-fpm"]
    severity: critical
    tags: [T1059]
    action: alert
    exceptions:
    - process.args.exists(a, a == "/usr/local/bin/healthcheck")
    - name: the entrypoint
      condition: process.nsPid == 1
  - name: web writes its config
    kinds: [file]
    condition: |
      web_process && syscall in ["open", "openat"] &&
      args.path.startsWith("/etc/nginx/") && has(args.flags) && args.flags.contains("O_WRONLY")
    severity: medium
    once: args.path
  - name: web connect burst
    kinds: [network]
    condition: web_process && syscall == "connect"
    severity: low
    action: log
    threshold: {count: 50, seconds: 10}
  overrides:
  - rule: package manager at run time
    action: kill
  - rule: opening passwd
    enabled: false
`;

test('a good policy passes check (as a file and as its directory); without the defaults it names what it misses', async () => {
  const { paths, dir } = writeCase({ 'web.yaml': GOOD });
  const withDefaults = await runVigil(['policy', 'check', paths[0]!]);
  assert.equal(withDefaults.code, 0, withDefaults.stderr);
  assert.equal(withDefaults.stderr, '');
  const lib = loadPolicies(paths);
  assert.equal(withDefaults.stdout, `ok: ${lib.set.size} rules from ${lib.files.length} files\n`);
  assert.equal(lib.set.size, loadPolicies([]).set.size + 3);
  assert.ok(lib.set.has('web shell') && lib.set.has('execve shell'));
  // A directory stands for its files.
  const byDir = await runVigil(['policy', 'check', dir]);
  assert.equal(byDir.stdout, withDefaults.stdout);
  // On its own it fails: it appends to and overrides what only the defaults define.
  const alone = await runVigil(['policy', 'check', '--no-default-policy', dir]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /list shell_binaries: append to a list no earlier policy defines/);
  assert.match(alone.stderr, /override of unknown rule 'package manager at run time'/);
});

// The policy guide's examples (docs/policy.md, which the README points to), as written there.
const GUIDE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'policy.md'), 'utf8');
const GUIDE_POLICIES = [...GUIDE.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string).filter((y) => y.includes('apiVersion: vigil.dev/v1'));
// The issue's version of the first example: its rule has the name of a default rule.
const ISSUE_EXAMPLE = `apiVersion: vigil.dev/v1
kind: Policy
metadata: {name: shells}
spec:
  selector: {image: "registry.example/web/*"}
  rules:
  - name: execve shell
    kinds: [exec]
    condition: process.comm in shells && !process.containerSetup && process.parent != "nginx"
    severity: high
    tags: [T1059]
    action: alert
  lists:
    shells: [sh, bash, dash, ash, zsh]
`;

function execEvent(comm: string, parent: string, image: string): VigilEvent {
  return {
    seq: 1, time: '1796000000000000000', host: 'h', kind: 'exec', syscall: 'execve', args: { filename: `/bin/${comm}` }, ret: 0,
    container: Object.freeze({ id: `c-${image}`, name: 'web-1', image, runtime: 'docker' }),
    process: { pid: 100, nsPid: 7, ppid: 99, parent, comm, exe: `/bin/${comm}`, args: [comm], argsTruncated: false, uid: 0, gid: 0, caps: [], containerSetup: false, ancestors: [parent], entered: false, stdio: ['pipe', 'pipe', 'pipe'], exeWritten: false, exeInImage: true, parentExe: `/usr/bin/${parent}` },
    namespaces: { mnt: 1, pid: 2, cgroupId: '3', containerKey: '4' },
    verdict: { level: 'NORMAL', rules: [], action: 'none' },
  } as unknown as VigilEvent;
}

test("the policy guide's examples check next to the default rules; its first judges as written", async () => {
  assert.ok(GUIDE_POLICIES.length >= 3, `docs/policy.md has ${GUIDE_POLICIES.length} policy examples`);
  const paths = writeCase(Object.fromEntries(GUIDE_POLICIES.map((y, i) => [`example-${i + 1}.yaml`, y]))).paths;
  for (const p of paths) {
    const r = await runVigil(['policy', 'check', p]);
    assert.equal(r.code, 0, `${p}:\n${readFileSync(p, 'utf8')}\n${r.stderr}`);
    assert.match(r.stdout, /^ok: \d+ rules from \d+ files\n$/);
  }
  const all = await runVigil(['policy', 'check', ...paths]);
  assert.equal(all.code, 0, all.stderr);
  // The first, the format's example, stands on its own too.
  const alone = await runVigil(['policy', 'check', '--no-default-policy', paths[0]!]);
  assert.equal(alone.code, 0, alone.stderr);
  assert.equal(alone.stdout, 'ok: 1 rule from 1 file\n');
  const { set } = loadPolicies([paths[0]!]);
  const rule = set.list().find((r) => r.policy === 'shells')!.name;
  const judged = set.judge(execEvent('bash', 'php', 'registry.example/web/shop:1'));
  assert.equal(judged.level, 'INSECURE');
  assert.ok(judged.rules.includes(rule), JSON.stringify(judged));
  assert.ok(!set.judge(execEvent('bash', 'nginx', 'registry.example/web/shop:1')).rules.includes(rule), 'a shell under nginx is allowed');
  assert.ok(!set.judge(execEvent('cat', 'php', 'registry.example/web/shop:1')).rules.includes(rule), 'not a shell');
  assert.ok(!set.judge(execEvent('bash', 'php', 'registry.example/db/pg:1')).rules.includes(rule), 'outside the selector');
});

test("the issue's version of the example (rule 'execve shell') checks alone; next to the defaults it is a redefinition, and the message says what to do", async () => {
  const { paths } = writeCase({ 'shells.yaml': ISSUE_EXAMPLE });
  const r = await runVigil(['policy', 'check', '--no-default-policy', paths[0]!]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'ok: 1 rule from 1 file\n');
  const { set } = loadPolicies(paths, { defaults: false });
  assert.deepEqual(set.judge(execEvent('bash', 'php', 'registry.example/web/shop:1')), { level: 'INSECURE', rules: ['execve shell'], action: 'alert', severity: 'high' });
  assert.equal(set.judge(execEvent('bash', 'nginx', 'registry.example/web/shop:1')).level, 'NORMAL');
  const both = await runVigil(['policy', 'check', paths[0]!]);
  assert.equal(both.code, 1);
  const where = locate(ISSUE_EXAMPLE, '- name: «execve shell');
  assert.match(both.stderr.trim(), new RegExp(`^${paths[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${where.line}:${where.col}: rule 'execve shell' is already defined at .*10-execution\\.yaml:\\d+; change it with an override`));
});

test('policy check: usage errors exit 2, an unreadable path is a problem of its own', async () => {
  const none = await runVigil(['policy', 'check', '--no-default-policy']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /nothing to check/);
  const bad = await runVigil(['policy', 'check', '--frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--frobnicate/);
  const missing = join(root, 'no-such.yaml');
  const r = await runVigil(['policy', 'check', missing]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `${missing}:1:1: cannot read it (ENOENT)\n`);
});
