// No false alarm from the allow-lists: the analysis tests' workloads (test/analysis/workloads.ts)
// run under `vigil agent --allowlists` with the rule's action `kill`, each container's list
// loaded by the agent itself, and none of their calls is outside it: no report, no kill, the
// workload completes. nginx and redis are driven from the host over Docker's bridge network
// (a `docker exec` of wget or redis-cli would run programs outside the entrypoint's closure).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, uniqueName } from '../helpers/host.js';
import { LogTail, startAgent, type RunningAgent } from '../helpers/agent-process.js';
import { until } from '../helpers/wait.js';
import { BUSYBOX_WORKLOAD, IMAGES, PYTHON_WORKLOAD, missingImages, removeContainer, waitExit } from '../analysis/workloads.js';

const skip = missingImages();
const PREFIX = `vigil-alw-${process.pid}`;

function killPolicy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-alw-'));
  const path = join(dir, 'kill.yaml');
  writeFileSync(path, ['apiVersion: vigil.dev/v1', 'kind: Policy', 'metadata:', '  name: alw-kill', 'spec:', '  selector:', `    name: ["${PREFIX}-*"]`,
    '  overrides:', '    - rule: syscall not in allow-list', '      action: kill', ''].join('\n'));
  return path;
}

function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A connection per request (no keep-alive): a reload's old workers close theirs.
    const req = request({ host, port, path, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** One RESP command to redis over TCP; its reply line(s) as text. */
function redis(host: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port: 6379 });
    let got = '';
    s.setTimeout(10_000, () => s.destroy(new Error('redis timeout')));
    s.on('connect', () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    // A reply is whole at its first CRLF, or for a bulk string ($LEN) after LEN more bytes and a CRLF.
    const whole = () => {
      const eol = got.indexOf('\r\n');
      if (eol < 0) return false;
      if (got[0] !== '$') return true;
      const len = Number(got.slice(1, eol));
      return len < 0 || Buffer.byteLength(got) >= eol + 2 + len + 2;
    };
    s.on('data', (d) => {
      got += d.toString();
      if (whole()) {
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', (e) => (args[0] === 'SHUTDOWN' ? resolve('') : reject(e)));
    s.on('close', () => resolve(got.trim()));
  });
}

describe('allow-lists under real workloads: nothing reported, nothing killed', { skip, timeout: 600_000 }, () => {
  let agent: RunningAgent;
  before(async () => {
    agent = await startAgent(['--allowlists', '--no-control-socket', '--policy', killPolicy()]);
  });
  after(async () => {
    await agent?.stop();
  });

  let tail: LogTail | undefined;
  const own = (name: string) => (tail ??= new LogTail(agent.logPath, (l) => l.includes(`"name":"${PREFIX}`))).events().filter((e) => e.container.name === name);
  const loadedFor = (name: string) => until(`the allow-list of ${name}`, () => own(name).find((e) => e.kind === 'agent' && e.syscall === 'allowlist'), 120_000, 100);
  /** The container's reports, once its own events have all been read (its exit, or a marker). */
  function assertClean(name: string): void {
    const es = own(name);
    const off = es.filter((e) => e.args['not_in_allowlist'] === true).map((e) => `${e.process.comm}:${e.syscall}${e.args['before_allowlist'] ? ' (before the list)' : ''}`);
    assert.deepEqual(off, [], `${name}: calls reported outside the allow-list`);
    assert.deepEqual(es.filter((e) => e.kind === 'exit' && e.args['signal'] === 9).map((e) => e.process.comm), [], 'nothing killed');
  }

  async function waitQuiet(name: string): Promise<void> {
    // Every event of the container is in the log once its last process's exit is.
    await until(`${name}'s events`, () => own(name).some((e) => e.kind === 'exit' && e.process.nsPid === 1), 60_000, 100);
  }

  for (const [image, script] of [['busybox', ['/bin/sh', '-c', BUSYBOX_WORKLOAD]], ['python', ['python3', '-c', PYTHON_WORKLOAD]]] as const) {
    test(`${image}: its workload`, async () => {
      const name = uniqueName(`${PREFIX}-${image}`);
      // The workload waits for its list: what ran before the list would be reported too (never killed).
      docker('run', '-d', '--pull', 'never', '--name', name, IMAGES[image], 'sleep', '600');
      try {
        const entry = await loadedFor(name);
        assert.equal(entry.args['state'], 'loaded', JSON.stringify(entry.args));
        assert.equal(entry.args['enforce'], 'kill');
        docker('rm', '-f', name);
        const run = uniqueName(`${PREFIX}-${image}-run`);
        docker('run', '-d', '--pull', 'never', '--name', run, IMAGES[image], ...script);
        try {
          assert.equal(await waitExit(run, 180_000), 0, docker('logs', run));
          assert.match(docker('logs', run), /workload ok/);
          await waitQuiet(run);
          assertClean(run);
        } finally {
          removeContainer(run);
        }
      } finally {
        removeContainer(name);
      }
    });
  }

  test('nginx: static files, a 404, a reload (SIGHUP) and a graceful stop (SIGQUIT)', async () => {
    const name = uniqueName(`${PREFIX}-nginx`);
    docker('run', '-d', '--pull', 'never', '--name', name, IMAGES.nginx, 'nginx');
    try {
      assert.equal((await loadedFor(name)).args['state'], 'loaded');
      const ip = docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name);
      const root = await until('nginx answering', async () => (await httpGet(ip, 8080, '/').catch(() => undefined))?.body, 60_000, 200);
      assert.match(root, /vigil-test nginx/);
      assert.equal((await httpGet(ip, 8080, '/missing')).status, 404);
      docker('kill', '-s', 'HUP', name);
      for (let i = 0; i < 20; i++) assert.equal((await httpGet(ip, 8080, '/hello.txt')).body.trim(), 'vigil-test static file');
      docker('kill', '-s', 'QUIT', name);
      assert.equal(await waitExit(name), 0, docker('logs', name));
      await waitQuiet(name);
      assertClean(name);
    } finally {
      removeContainer(name);
    }
  });

  test('redis: commands, RDB and AOF persistence, SHUTDOWN SAVE', async () => {
    const name = uniqueName(`${PREFIX}-redis`);
    docker('run', '-d', '--pull', 'never', '--name', name, IMAGES.redis, 'redis-server', '/etc/redis/redis.conf', '--protected-mode', 'no', '--bind', '0.0.0.0');
    try {
      assert.equal((await loadedFor(name)).args['state'], 'loaded');
      const ip = docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name);
      await until('redis answering', async () => (await redis(ip, 'PING').catch(() => '')) === '+PONG', 60_000, 200);
      assert.equal(await redis(ip, 'SET', 'k', 'v'), '+OK');
      for (let i = 0; i < 50; i++) await redis(ip, 'SET', `key${i}`, 'x'.repeat(100));
      assert.equal(await redis(ip, 'SAVE'), '+OK');
      await redis(ip, 'BGSAVE');
      await until('BGSAVE done', async () => /rdb_bgsave_in_progress:0/.test(await redis(ip, 'INFO', 'persistence')), 60_000, 200);
      await redis(ip, 'BGREWRITEAOF');
      await until('AOF rewrite done', async () => /aof_rewrite_in_progress:0[\s\S]*aof_rewrite_scheduled:0/.test(await redis(ip, 'INFO', 'persistence')), 60_000, 200);
      await redis(ip, 'SHUTDOWN', 'SAVE');
      assert.equal(await waitExit(name), 0, docker('logs', name));
      await waitQuiet(name);
      assertClean(name);
    } finally {
      removeContainer(name);
    }
  });
});
