// The BMC of the attestation tests as it is deployed: `vigil bmc` (and the swtpm it
// starts) in a network namespace of its own, reached from this host only over a veth pair
// on a /30 (the out-of-band management network in miniature), serving HTTPS with the
// certificate it generated. The agent and the verifier are told its URL, its token file
// and how to check its certificate (the CA file, or the pinned fingerprint), as an
// operator would tell them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BmcApiClient } from '../../src/bmc/index.js';
import { haveProgram } from '../../src/tpm/index.js';
import { VIGIL_BIN } from '../helpers/agent-process.js';
import { createVethNamespace } from '../helpers/netns.js';

export interface NetnsBmc {
  /** https://ADDRESS:PORT in the namespace. */
  url: string;
  stateDir: string;
  /** The BMC's TLS certificate (PEM file, its own CA: self-signed, names the namespace address) and its SHA-256 fingerprint. */
  certFile: string;
  pinSha256: string;
  tokens: { host: string; verifier: string };
  tokenFiles: { host: string; verifier: string };
  pid: number;
  /** A client of this BMC pinned to its certificate (token: host, verifier, or none). */
  client(role: 'host' | 'verifier' | null): BmcApiClient;
  /** SIGTERM: an orderly stop (TPM shut down, anchor list closed). */
  stop(): Promise<void>;
  /** SIGKILL: the process dies mid-whatever; its swtpm is left for the next start to reap. */
  kill(): Promise<void>;
  output(): string;
}

export interface BmcNamespace {
  name: string;
  /** The namespace's end of the veth pair (where the BMCs listen). */
  address: string;
  startBmc(options: { stateDir: string; port: number; tpm?: string }): Promise<NetnsBmc>;
  close(): Promise<void>;
}

/** Why a BMC cannot be put in a network namespace here (the tests skip with it), or undefined. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace (ip netns)';
  for (const p of ['ip', 'swtpm', 'swtpm_setup', 'swtpm_localca', 'openssl']) if (!(await haveProgram(p))) return `not installed: ${p}`;
  const probe = `vigil-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('ip', ['netns', 'del', probe], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return `ip netns cannot be used here: ${((e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message).trim()}`;
  }
  return undefined;
}

/** A /30 in 10.203.0.0/16 that no interface of this host uses yet (other test files make their own). */
function freePrefix(): string {
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 256; i++) {
    const third = (process.pid + i * 7) % 256;
    const prefix = `10.203.${third}`;
    if (!used.includes(` ${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.203.x.0/30 for the BMC namespace');
}

const namespaces = new Set<() => void>();
process.on('exit', () => { for (const close of namespaces) close(); });

export function createBmcNamespace(tag: string): BmcNamespace {
  const id = `${process.pid % 100000}`;
  const name = `vigil-${tag}-${id}`;
  const ns = createVethNamespace(name, `v${tag}h${id}`.slice(0, 15), `v${tag}n${id}`.slice(0, 15), freePrefix());
  namespaces.add(ns.close);
  const running = new Set<NetnsBmc>();
  return {
    name,
    address: ns.address,
    startBmc: async (o) => {
      const b = await startInNamespace(name, ns.address, o);
      running.add(b);
      return b;
    },
    close: async () => {
      for (const b of running) await b.stop();
      ns.close();
      namespaces.delete(ns.close);
    },
  };
}

async function startInNamespace(ns: string, address: string, o: { stateDir: string; port: number; tpm?: string }): Promise<NetnsBmc> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, VIGIL_BIN, 'bmc', '--state-dir', o.stateDir, '--listen', `${address}:${o.port}`, ...(o.tpm ? ['--tpm', o.tpm] : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolveStart, reject) => {
    // Generating the EK certificates and the AK on a busy machine takes a while.
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`vigil bmc did not start within 120 s:\n${out}`)); }, 120_000);
    const check = () => { if (out.includes('verifier token')) { clearTimeout(timer); resolveStart(); } };
    child.stdout?.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`vigil bmc exited with ${code} before it listened:\n${out}`)); });
  });
  // `ip netns exec` execs the command: this pid is the BMC's node process itself.
  const pid = child.pid as number;
  const url = `https://${address}:${o.port}`;
  const certFile = join(o.stateDir, 'tls-cert.pem');
  const pinSha256 = readFileSync(join(o.stateDir, 'tls-cert.sha256'), 'utf8').trim();
  const tokenFiles = { host: join(o.stateDir, 'tokens', 'host.token'), verifier: join(o.stateDir, 'tokens', 'verifier.token') };
  const tokens = { host: readFileSync(tokenFiles.host, 'utf8').trim(), verifier: readFileSync(tokenFiles.verifier, 'utf8').trim() };
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    await exited;
  };
  return {
    url, stateDir: o.stateDir, certFile, pinSha256, tokens, tokenFiles, pid,
    client: (role) => new BmcApiClient(url, role ? tokens[role] : undefined, { pinSha256 }),
    stop: async () => {
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await signal('SIGTERM');
      clearTimeout(t);
    },
    kill: () => signal('SIGKILL'),
    output: () => out,
  };
}

/** The swtpm local CA of a BMC state directory (root and issuer): the verifier's trust store for its EK certificate. */
export function caPems(stateDir: string): string {
  return ['swtpm-localca-rootca-cert.pem', 'issuercert.pem'].filter((f) => existsSync(join(stateDir, 'ca', f))).map((f) => readFileSync(join(stateDir, 'ca', f), 'utf8')).join('\n');
}
