// The real agent's anchors reuse one TLS connection to the BMC: counted on the BMC's side,
// as the TCP passive opens of the BMC's network namespace (nothing else listens there, and
// this test does not talk to the BMC while it counts: it reads what the BMC acknowledged
// from the agent's anchored.json).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALERTS_ONLY_LOG, startAgent } from '../helpers/agent-process.js';
import { missingForContainerTests } from '../helpers/host.js';
import { until } from '../helpers/wait.js';
import { createBmcNamespace, netnsUnavailable, type BmcNamespace, type NetnsBmc } from './netns-bmc.js';

let skip = missingForContainerTests();
let work = '';
let ns: BmcNamespace | undefined;
let bmc: NetnsBmc | undefined;

before(async () => {
  skip ??= await netnsUnavailable();
  if (skip) { process.stdout.write(`# skipped: ${skip}\n`); return; }
  work = mkdtempSync(join(tmpdir(), 'vkeep-'));
  ns = createBmcNamespace('kal');
  bmc = await ns.startBmc({ stateDir: join(work, 'bmc'), port: 8443 });
});
after(async () => {
  await ns?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** TCP connections accepted in the namespace so far (/proc/net/snmp is per network namespace). */
function passiveOpens(name: string): number {
  const snmp = execFileSync('ip', ['netns', 'exec', name, 'cat', '/proc/net/snmp'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('Tcp:'));
  const [names, values] = snmp.map((l) => l.trim().split(/\s+/));
  return Number(values?.[names?.indexOf('PassiveOpens') ?? -1]);
}

/** The BMC seq of the last anchor the agent recorded as acknowledged, 0 before the first. */
function acknowledged(logDir: string): number {
  const p = join(logDir, 'anchored.json');
  if (!existsSync(p)) return 0;
  try { return (JSON.parse(readFileSync(p, 'utf8')) as { bmcSeq: number }).bmcSeq; } catch { return 0; } // being renamed into place
}

test('the agent\'s anchors reuse one kept-alive TLS connection to the BMC', async (t) => {
  if (skip || !bmc || !ns) { t.skip(skip ?? 'no BMC'); return; }
  const logDir = join(work, 'log');
  // A seal 200 ms after a batch's first entry, a heartbeat every second: an anchor about
  // every second, well inside the BMC's keep-alive timeout (5 s).
  const agent = await startAgent(['--log', logDir, '--bmc', bmc.url, '--bmc-token', bmc.tokenFiles.host, '--bmc-ca', bmc.certFile,
    '--log-batch-ms', '200', '--heartbeat', '1', '--program-check-ms', '0', '--no-default-policy', ALERTS_ONLY_LOG], 120_000);
  try {
    const first = await until('the first anchor acknowledged', () => acknowledged(logDir) || undefined, 60_000);
    const opens = passiveOpens(ns.name);
    const seq = await until('eight more anchors acknowledged', () => (acknowledged(logDir) >= first + 8 ? acknowledged(logDir) : undefined), 60_000, 100);
    const more = passiveOpens(ns.name) - opens;
    assert.ok(more <= 1, `${seq - first} anchors took ${more} new connections to the BMC (at most one expected: the one in use may have been opened just before counting)`);
  } finally {
    assert.equal((await agent.stop()).code, 0, agent.stderr());
  }
  assert.doesNotMatch(agent.stderr(), /cannot be reached/, 'no anchoring outage');
});
