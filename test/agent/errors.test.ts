// Bad configuration and missing kernel features: one line saying what is wrong and
// what to do, and a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { runVigil, VIGIL_BIN } from '../helpers/agent-process.js';
import { kernelTooOld } from '../../src/sensor/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
function configFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function assertOneLineError(r: { code: number | null; stderr: string }, ...mentions: string[]): void {
  assert.notEqual(r.code, 0, 'must exit non-zero');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0] as string, /^vigil agent: /);
  for (const m of mentions) assert.ok(lines[0]!.includes(m), `'${lines[0]}' does not mention '${m}'`);
}

test('unknown key in the config file names the file and the key', async () => {
  const p = configFile('unknown.yaml', 'outputs: [jsonl:/tmp/x.jsonl]\nringbuffer: 4096\n');
  assertOneLineError(await runVigil(['agent', '--config', p]), p, "'ringbuffer'", 'ringBufferBytes');
});

test('a config value of the wrong type names the key and what it must be', async () => {
  const p = configFile('type.yaml', 'ringBufferBytes: 5000\n');
  assertOneLineError(await runVigil(['agent', '--config', p]), "'ringBufferBytes'", 'power of two');
  const q = configFile('outputs.yaml', 'outputs: [xml:/tmp/x]\n');
  assertOneLineError(await runVigil(['agent', '--config', q]), "outputs'[0]", "unknown format 'xml'");
});

test('invalid YAML and a missing config file are reported as such', async () => {
  const p = configFile('bad.yaml', 'outputs: [jsonl:/tmp/x\n  - : :\n');
  assertOneLineError(await runVigil(['agent', '--config', p]), p, 'not valid YAML');
  assertOneLineError(await runVigil(['agent', '--config', join(dir, 'absent.yaml')]), 'cannot read it', 'ENOENT');
});

test('bad flags are reported with the flag', async () => {
  assertOneLineError(await runVigil(['agent', '--output', 'csv:/tmp/x']), '--output', "unknown format 'csv'");
  assertOneLineError(await runVigil(['agent', '--frobnicate']), "'--frobnicate'", '--help');
  assertOneLineError(await runVigil(['agent', '--duration', 'soon']), '--duration');
});

test('an output path that cannot be created names the output and the reason', async () => {
  assertOneLineError(await runVigil(['agent', '--output', 'jsonl:/proc/vigil-no-such/dir/events.jsonl']), 'jsonl output /proc/vigil-no-such/dir/events.jsonl', 'cannot create directory /proc/vigil-no-such');
  // A directory where the file should be.
  assertOneLineError(await runVigil(['agent', '--output', `text:${dir}`]), `text output ${dir}`, 'cannot open it for appending (EISDIR)');
});

test('a counts or metrics path that cannot be written is refused at start, naming the flag', async () => {
  assertOneLineError(await runVigil(['agent', '--counts', '/proc/vigil-no-such/counts.json']), '--counts /proc/vigil-no-such/counts.json', 'cannot create directory /proc/vigil-no-such');
  assertOneLineError(await runVigil(['agent', '--metrics', '/proc/sys/vigil.prom']), '--metrics /proc/sys/vigil.prom');
});

test('without root or CAP_BPF with CAP_PERFMON: one line saying what privilege is needed', { skip: process.getuid?.() !== 0 && 'needs root to drop to another user' }, async () => {
  // The same command as an unprivileged user with no capabilities.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, VIGIL_BIN, 'agent'], { encoding: 'utf8' });
  assertOneLineError({ code: r.status, stderr: r.stderr }, 'needs root, or CAP_BPF with CAP_PERFMON');
});

test('a missing kernel feature (no BTF) says what is missing and what to do', async () => {
  assertOneLineError(await runVigil(['agent', '--btf', join(dir, 'no-such-btf')]), 'BTF', '--btf');
});

test('vigil --help lists the subcommands; an unknown one fails', async () => {
  const help = await runVigil(['--help']);
  assert.equal(help.code, 0);
  for (const sub of ['agent', 'server', 'bmc', 'analyze', 'verify', 'policy', 'bench']) assert.match(help.stdout, new RegExp(`^  ${sub} `, 'm'));
  const bad = await runVigil(['nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'nope'/);
});

test('a kernel older than the programs need is named with the version required', () => {
  assert.match(kernelTooOld('5.10.0-28-amd64') ?? '', /5\.10\.0-28-amd64\) is too old: vigil needs Linux 5\.17 or later/);
  assert.equal(kernelTooOld('5.17.0'), undefined);
  assert.equal(kernelTooOld('6.1.0-18-amd64'), undefined);
  assert.equal(kernelTooOld('6.18.44-fc-v669'), undefined);
  assert.ok(kernelTooOld('4.19.0'));
  assert.equal(kernelTooOld('unusual'), undefined, 'an unparseable release is left to the loader');
});
