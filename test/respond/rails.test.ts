// The safety rails and the configuration on their own: rate limits, protection, the
// monitor's own container, the `respond` config section and its errors, the control
// request parser, the acting rule, and the agent's flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actingRule, DEFAULT_RESPOND, ownContainerId, parseRequest, parseRespondConfig, Protection, RateLimiter } from '../../src/respond/index.js';
import { ConfigError, loadConfigFile, parseAgentArgs } from '../../src/agent/config.js';
import type { RuleInfo } from '../../src/policy/index.js';
import { runVigil } from '../helpers/agent-process.js';

test('rate limiter: count actions per key within the window, then refused until the window moves on', () => {
  const l = new RateLimiter({ count: 2, seconds: 10 });
  assert.equal(l.take('a', 0), true);
  assert.equal(l.take('a', 1000), true);
  assert.equal(l.take('a', 2000), false);
  assert.equal(l.take('b', 2000), true, 'another key has its own window');
  assert.equal(l.take('a', 10_001), true, 'the first take left the window');
  let taken = 0;
  for (let i = 0; i < 1000; i++) if (l.take('burst', 50_000)) taken++;
  assert.equal(taken, 2);
});

test('protection: own container, name globs, label keys and KEY=GLOB; unknown labels count as protected only for label rules', () => {
  const p = new Protection({ names: ['db-*', 'vigil'], labels: ['io.example/critical', 'tier=prod*'] }, 'f'.repeat(64));
  assert.match(p.reason({ id: 'f'.repeat(64), name: 'x' }, {}) ?? '', /own container/);
  assert.match(p.reason({ id: '1', name: 'db-main' }, {}) ?? '', /protect\.names 'db-\*'/);
  assert.equal(p.reason({ id: '1', name: 'web' }, {}), undefined);
  assert.match(p.reason({ id: '1', name: 'web' }, { 'io.example/critical': '' }) ?? '', /protect\.labels/);
  assert.match(p.reason({ id: '1', name: 'web' }, { tier: 'production' }) ?? '', /tier=prod\*/);
  assert.equal(p.reason({ id: '1', name: 'web' }, { tier: 'dev' }), undefined);
  assert.match(p.reason({ id: '1', name: 'web' }, undefined) ?? '', /not known yet/);
  assert.equal(new Protection({ names: [], labels: [] }, undefined).reason({ id: '1', name: 'web' }, undefined), undefined);
});

test('the monitor\'s own container: from its cgroup, or the mount over /etc/hostname; the host\'s shm mounts do not count', () => {
  const id = 'a'.repeat(64);
  const other = 'b'.repeat(64);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-proc-'));
  const inCgroup = join(dir, 'cg');
  mkdirSync(inCgroup);
  writeFileSync(join(inCgroup, 'cgroup'), `0::/system.slice/docker-${id}.scope\n`);
  writeFileSync(join(inCgroup, 'mountinfo'), '');
  assert.equal(ownContainerId(inCgroup), id);
  const byMount = join(dir, 'mnt');
  mkdirSync(byMount);
  writeFileSync(join(byMount, 'cgroup'), '0::/\n');
  writeFileSync(join(byMount, 'mountinfo'), `136 118 254:0 /var/lib/docker/containers/${id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n`);
  assert.equal(ownContainerId(byMount), id);
  const host = join(dir, 'host');
  mkdirSync(host);
  writeFileSync(join(host, 'cgroup'), '0::/user.slice/user-0.slice/session-1.scope\n');
  writeFileSync(join(host, 'mountinfo'), `200 30 0:50 / /var/lib/docker/containers/${other}/mounts/shm rw - tmpfs shm rw\n`);
  assert.equal(ownContainerId(host), undefined);
});

test('respond config: defaults, every key, and errors that name the key and what is expected', () => {
  assert.deepEqual(parseRespondConfig(undefined, 'x'), DEFAULT_RESPOND);
  const c = parseRespondConfig({ dryRun: true, stopTimeoutSeconds: 2, protect: { names: ['a*'], labels: ['k=v'] }, rateLimit: { perRule: { count: 3 } }, socket: '' }, 'x');
  assert.equal(c.dryRun, true);
  assert.deepEqual(c.rateLimit.perRule, { count: 3, seconds: 60 });
  assert.deepEqual(c.rateLimit.perContainer, DEFAULT_RESPOND.rateLimit.perContainer);
  assert.equal(c.socket, '');
  assert.throws(() => parseRespondConfig({ dryrun: true }, 'f'), /f: unknown key 'dryrun'; known keys are dryRun/);
  assert.throws(() => parseRespondConfig({ rateLimit: { perRule: { count: 0 } } }, 'f'), /f\.rateLimit\.perRule\.count: must be a whole number/);
  assert.throws(() => parseRespondConfig({ protect: { names: 'web' } }, 'f'), /f\.protect\.names: must be a list/);
  assert.throws(() => parseRespondConfig({ socket: 'relative.sock' }, 'f'), /f\.socket: must be an absolute path/);
  assert.throws(() => parseRespondConfig({ stopTimeoutSeconds: -1 }, 'f'), /stopTimeoutSeconds/);
});

test('agent: respond in the config file, --dry-run and --control-socket over it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-cfg-'));
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, 'respond:\n  dryRun: false\n  protect:\n    names: [db]\n');
  assert.deepEqual(loadConfigFile(file).respond?.protect.names, ['db']);
  const cfg = parseAgentArgs(['--config', file, '--dry-run', '--control-socket', '/tmp/x.sock']);
  assert.equal(cfg?.respond.dryRun, true);
  assert.equal(cfg?.respond.socket, '/tmp/x.sock');
  assert.equal(parseAgentArgs(['--no-control-socket'])?.respond.socket, '');
  assert.equal(DEFAULT_RESPOND.dryRun, false, 'flags never change the defaults');
  writeFileSync(file, 'respond:\n  rateLimit:\n    perContainer: {count: 1, seconds: 0}\n');
  assert.throws(() => loadConfigFile(file), (e: unknown) => e instanceof ConfigError && /key 'respond'\.rateLimit\.perContainer\.seconds/.test(e.message));
  assert.throws(() => parseAgentArgs(['--control-socket', 'rel']), /expected an absolute path/);
});

test('control requests: the token is checked first, then the action and the container name', () => {
  const token = Buffer.alloc(32, 7);
  const hex = token.toString('hex');
  assert.deepEqual(parseRequest(JSON.stringify({ token: hex, action: 'pause', container: 'web-1' }), token), { action: 'pause', container: 'web-1', timeoutSeconds: undefined });
  assert.throws(() => parseRequest(JSON.stringify({ token: 'x', action: 'pause', container: 'web' }), token), /bad or missing token/);
  assert.throws(() => parseRequest(JSON.stringify({ action: 'pause', container: 'web' }), token), /bad or missing token/);
  assert.throws(() => parseRequest(JSON.stringify({ token: hex, action: 'rm', container: 'web' }), token), /action must be one of pause, stop, kill, isolate/);
  assert.throws(() => parseRequest(JSON.stringify({ token: hex, action: 'stop', container: '../../images' }), token), /container must be a container name or id/);
  assert.throws(() => parseRequest('not json', token), /not a JSON line/);
});

test('the acting rule: the matched rule whose action is the verdict\'s', () => {
  const info = (name: string, action: RuleInfo['action'], overriddenBy: string[] = []): RuleInfo => ({
    name, action, overriddenBy, policy: 'p', file: 'f', line: 1, description: '', kinds: undefined, severity: 'high', tags: [], enabled: true, syscalls: undefined,
  });
  const rules = [info('a', 'alert'), info('b', 'kill'), info('c', 'alert', ['f:3'])];
  assert.equal(actingRule(['a', 'b'], 'kill', rules), 'b');
  assert.equal(actingRule(['a', 'c'], 'pause', rules), 'c', 'an override changed its action for some containers');
  assert.equal(actingRule(['a'], 'stop', rules), 'a');
});

test('vigil respond: usage errors exit 2, a missing socket or token exits 1 with the reason', async () => {
  const usage = await runVigil(['respond', 'reboot', 'web']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /expected ACTION CONTAINER with ACTION one of pause, stop, kill, isolate/);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-'));
  const noToken = await runVigil(['respond', 'pause', 'web', '--socket', join(dir, 'none.sock')]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /cannot read the token .*none\.sock\.token: ENOENT/);
  writeFileSync(join(dir, 't'), 'abc\n');
  const noSocket = await runVigil(['respond', 'pause', 'web', '--socket', join(dir, 'none.sock'), '--token', join(dir, 't')]);
  assert.equal(noSocket.code, 1);
  assert.match(noSocket.stderr, /no agent control socket there/);
  const help = await runVigil(['--help']);
  assert.match(help.stdout, /respond +ask the running agent/);
});
