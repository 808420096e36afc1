// Running swtpm (the software TPM) for the BMC service and for tests: provisioning a
// state directory with EK certificates from a local CA, starting it on TCP ports,
// powering it on through the control channel, and stopping it.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TpmClient } from './client.js';
import { passwordSession } from './command.js';
import { Alg, Handle, NvAttr, Property } from './constants.js';
import { TpmProcessError, TpmResponseError } from './errors.js';
import { createEk } from './keys.js';
import { EK_CERT_NV_INDEX } from './templates.js';
import { SwtpmControl, SwtpmTcpTransport } from './transport.js';

const execFileP = promisify(execFile);

/** Whether a program is on PATH (for tests that skip when swtpm is absent). */
export async function haveProgram(name: string): Promise<boolean> {
  try { await execFileP('sh', ['-c', `command -v ${name}`]); return true; } catch { return false; }
}

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** Two consecutive free TCP ports (data and control channel), P and P+1. */
export async function freePortPair(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => { const a = srv.address(); srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0)); });
    });
    if (port > 0 && port < 65535 && await portIsFree(port + 1, host)) return port;
  }
  throw new TpmProcessError('could not find two consecutive free TCP ports for swtpm');
}

export interface ProvisionResult {
  /** Root and intermediate CA certificates (PEM) of the local CA that signed the EK certificate. */
  caCertificates: string[];
  /** Whether this call created the TPM state (false: it was already there). */
  created: boolean;
  /** The file (0600, 64 hex digits) with the AES-256 key that encrypts the TPM state at rest; pass it to SwtpmProcess.start. */
  keyFile: string;
}

/** Where provisionSwtpm keeps the state encryption key of `stateDir`. */
export function swtpmKeyPath(stateDir: string): string { return join(stateDir, 'swtpm.key'); }

/**
 * Manufactures a TPM state in `stateDir/tpm` like a TPM vendor would: EKs, EK
 * certificates for the RSA 2048 (L-1) and ECC NIST P-256 (L-2) templates, and a platform
 * certificate, all signed by a local CA kept in `stateDir/ca`. Steps already done are
 * skipped, so a state made before a step existed is completed. The CA configuration
 * lives in the state directory so separate instances never share a CA by accident.
 */
export async function provisionSwtpm(stateDir: string): Promise<ProvisionResult> {
  const tpmDir = join(stateDir, 'tpm');
  const caDir = join(stateDir, 'ca');
  mkdirSync(tpmDir, { recursive: true, mode: 0o700 });
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  chmodSync(tpmDir, 0o700);
  const created = !existsSync(join(tpmDir, 'tpm2-00.permall'));
  // The TPM's permanent state holds its endorsement seed: whoever reads it can clone the
  // EK. It is encrypted at rest with a key of its own, kept beside it owner-only, so a
  // copy of the tpm directory alone (a backup, a disk image) gives nothing away.
  const keyFile = swtpmKeyPath(stateDir);
  if (created) {
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  } else if (!existsSync(keyFile)) {
    throw new TpmProcessError(`the TPM state in ${tpmDir} is not encrypted at rest (it was made before vigil encrypted it, and ${keyFile} is missing); `
      + 'move the state directory away to manufacture a new TPM (verifiers must then enrol its new EK and AK)');
  }
  chmodSync(keyFile, 0o600);
  const caConf = join(stateDir, 'swtpm-localca.conf');
  const optsFile = join(stateDir, 'swtpm-localca.options');
  const setupConf = join(stateDir, 'swtpm_setup.conf');
  // Written on every call (same content for the same directory): the P-256 step below
  // needs them for a state made before it existed, and a moved directory gets its paths fixed.
  writeFileSync(caConf, [`statedir = ${caDir}`, `signingkey = ${join(caDir, 'signkey.pem')}`, `issuercert = ${join(caDir, 'issuercert.pem')}`, `certserial = ${join(caDir, 'certserial')}`, ''].join('\n'));
  writeFileSync(optsFile, ['--platform-manufacturer vigil', '--platform-version 1.0', '--platform-model vigil-bmc', ''].join('\n'));
  writeFileSync(setupConf, ['create_certs_tool = swtpm_localca', `create_certs_tool_config = ${caConf}`, `create_certs_tool_options = ${optsFile}`, 'active_pcr_banks = sha256', ''].join('\n'));
  if (created) {
    try {
      await execFileP('swtpm_setup', ['--tpm2', '--tpmstate', tpmDir, '--create-ek-cert', '--create-platform-cert', '--config', setupConf,
        '--pcr-banks', 'sha256', '--keyfile', keyFile, '--cipher', 'aes-256-cbc', '--logfile', join(stateDir, 'swtpm_setup.log')], { timeout: 60_000 });
    } catch (e) {
      const log = await readFile(join(stateDir, 'swtpm_setup.log'), 'utf8').catch(() => '');
      throw new TpmProcessError(`swtpm_setup failed to manufacture the TPM in ${tpmDir}: ${(e as Error).message}\n${log.slice(-2000)}`, { cause: e });
    }
  }
  if (!existsSync(eccP256CertRecord(stateDir))) await certifyEccP256Ek(stateDir, caConf, optsFile, keyFile);
  const caCertificates: string[] = [];
  for (const f of ['swtpm-localca-rootca-cert.pem', 'issuercert.pem']) {
    const p = join(caDir, f);
    if (existsSync(p)) caCertificates.push(await readFile(p, 'utf8'));
  }
  return { caCertificates, created, keyFile };
}

/** A copy of the P-256 EK certificate written to NV; its presence means the step is done. */
function eccP256CertRecord(stateDir: string): string { return join(stateDir, 'ek-ecc-p256-cert.der'); }

/**
 * What swtpm_setup gives its EK certificate indices (read back from one it made): made by
 * the platform (TPM_RH_PLATFORM, so TPM2_Clear by the owner cannot delete it), written
 * with platform authorization, readable by owner, platform and anyone with the empty
 * index auth, no dictionary-attack lockout, and lockable for good (WRITEDEFINE).
 */
const EK_CERT_NV_ATTRIBUTES = (NvAttr.PLATFORMCREATE | NvAttr.PPWRITE | NvAttr.WRITEDEFINE | NvAttr.PPREAD | NvAttr.OWNERREAD
  | NvAttr.AUTHREAD | NvAttr.NO_DA) >>> 0;

/**
 * swtpm_setup 0.7 certifies only a P-384 ECC EK (high range, index 0x01c00016), not the
 * P-256 EK of the L-2 template the EK profile puts at 0x01c0000a. This step does for
 * P-256 what swtpm_setup does for its keys: derives the EK, has the local CA's tool
 * (swtpm_localca, the one swtpm_setup calls) issue a certificate for its public point,
 * and stores it in NV under the platform hierarchy, whose authorization is empty after
 * every TPM2_Startup on swtpm (there is no platform firmware to set it).
 */
async function certifyEccP256Ek(stateDir: string, caConf: string, optsFile: string, keyFile: string): Promise<void> {
  const index = EK_CERT_NV_INDEX.ecc;
  const swtpm = await SwtpmProcess.start({ tpmStateDir: join(stateDir, 'tpm'), logFile: join(stateDir, 'swtpm.log'), keyFile, terminate: true });
  const client = new TpmClient(swtpm.transport());
  const work = mkdtempSync(join(stateDir, 'ek-cert-'));
  try {
    await client.startup('clear');
    const existing = await client.nvReadPublic(index).catch((e: unknown) => { if (e instanceof TpmResponseError) return undefined; throw e; });
    let der: Buffer;
    if (existing && existing.nvPublic.attributes & NvAttr.WRITTEN) {
      // Done before, but the record was not written (a crash right after): keep the TPM's.
      der = await client.nvRead(index, { authHandle: Handle.PLATFORM });
    } else {
      // Defined but never written (a crash between the two): start over.
      if (existing) await client.nvUndefineSpace(index, passwordSession(), Handle.PLATFORM);
      const ek = await createEk(client, 'ecc');
      await client.flushContext(ek.handle);
      const pub = ek.outPublic.public;
      if (pub.type !== 'ecc') throw new TpmProcessError('the L-2 EK template produced a non-ECC key');
      const level = (await client.getProperty(Property.LEVEL)) ?? 0;
      const revision = (await client.getProperty(Property.REVISION)) ?? 0;
      const firmware = (await client.getProperty(Property.FIRMWARE_VERSION_1)) ?? 0;
      // The same TPM identity arguments swtpm_setup passes for its own EK certificates
      // (manufacturer id 0x1014 and model "swtpm" are what it hard-codes for swtpm).
      const args = ['--type', 'ek', '--ek', `x=${pub.x.toString('hex')},y=${pub.y.toString('hex')},id=secp256r1`, '--dir', work,
        '--logfile', join(stateDir, 'swtpm_setup.log'), '--tpm-spec-family', '2.0', '--tpm-spec-level', String(level),
        '--tpm-spec-revision', String(revision), '--tpm-manufacturer', 'id:00001014', '--tpm-model', 'swtpm',
        '--tpm-version', `id:${firmware.toString(16).padStart(8, '0')}`, '--tpm2', '--configfile', caConf, '--optsfile', optsFile];
      try {
        await execFileP('swtpm_localca', args, { timeout: 60_000 });
      } catch (e) {
        throw new TpmProcessError(`swtpm_localca could not issue the ECC P-256 EK certificate: ${(e as Error).message}`, { cause: e });
      }
      der = await readFile(join(work, 'ek.cert'));
      await client.nvDefineSpace({ nvIndex: index, nameAlg: Alg.SHA256, attributes: EK_CERT_NV_ATTRIBUTES, authPolicy: Buffer.alloc(0), dataSize: der.length },
        Buffer.alloc(0), passwordSession(), Handle.PLATFORM);
      await client.nvWrite(index, der, { authHandle: Handle.PLATFORM });
    }
    writeFileSync(eccP256CertRecord(stateDir), der, { mode: 0o644 });
    await client.shutdown('clear');
  } catch (e) {
    if (e instanceof TpmProcessError) throw e;
    throw new TpmProcessError(`cannot store an ECC P-256 EK certificate in the TPM in ${join(stateDir, 'tpm')}: ${(e as Error).message}`, { cause: e });
  } finally {
    rmSync(work, { recursive: true, force: true });
    await client.close().catch(() => undefined);
    await swtpm.stop();
  }
}

export interface SwtpmStartOptions {
  /** Directory holding the TPM state (swtpm's --tpmstate dir). */
  tpmStateDir: string;
  /**
   * How swtpm is reached. 'unix' (the default): a data and a control socket, mode 0600,
   * in `socketDir`, so only the owner of that directory can connect. 'tcp': loopback TCP
   * ports with no authentication, for tpm2-tools in tests only (TSS 3.2's swtpm TCTI
   * speaks TCP only): anyone on the machine can then read and reset this TPM.
   */
  listen?: 'unix' | 'tcp';
  /** Where the sockets and the pidfile go (default: tpmStateDir). Must be private to this user. */
  socketDir?: string;
  host?: string;
  /** TCP data port; the control port is port+1. Free ports are picked when absent. */
  port?: number;
  /** A file with the 256-bit AES key (64 hex digits) that encrypts the state at rest (swtpm --key). */
  keyFile?: string;
  /**
   * End swtpm when its data connection closes (swtpm --terminate): the TPM dies with its
   * only user, so a BMC killed with SIGKILL leaves no swtpm holding the state lock.
   */
  terminate?: boolean;
  logFile?: string;
}

/** The files of a unix-socket swtpm in `dir`. */
export function swtpmSocketPaths(dir: string): { data: string; ctrl: string; pidFile: string } {
  return { data: join(dir, 'swtpm.sock'), ctrl: join(dir, 'swtpm-ctrl.sock'), pidFile: join(dir, 'swtpm.pid') };
}

type Endpoint = { kind: 'unix'; data: string; ctrl: string } | { kind: 'tcp'; host: string; port: number; ctrlPort: number };

/** Whether `pid` is an swtpm serving `tpmStateDir` (read from its command line). */
function isSwtpmFor(pid: number, tpmStateDir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (argv[0] ?? '').endsWith('swtpm') && argv.includes(`dir=${tpmStateDir}`);
  } catch { return false; }
}

/**
 * Kills every swtpm still serving `tpmStateDir`: one left by a process that died without
 * stopping it (kill -9) holds the state's lock, and a new swtpm on the same state fails
 * CMD_INIT. Found through the pidfile and, in case the process died before swtpm wrote
 * it, through /proc. Waits until they are gone. Returns the pids killed.
 */
export async function killStaleSwtpm(tpmStateDir: string, pidFile?: string): Promise<number[]> {
  const pids = new Set<number>();
  if (pidFile && existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1 && isSwtpmFor(pid, tpmStateDir)) pids.add(pid);
  }
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid && isSwtpmFor(pid, tpmStateDir)) pids.add(pid);
  }
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
  const deadline = Date.now() + 10_000;
  for (const pid of pids) {
    // A killed child of ours stays a zombie until reaped; /proc/PID/cmdline is then empty, which isSwtpmFor reads as gone.
    while (isSwtpmFor(pid, tpmStateDir)) {
      if (Date.now() > deadline) throw new TpmProcessError(`an old swtpm (pid ${pid}) on ${tpmStateDir} does not die`);
      await sleep(20);
    }
  }
  if (pidFile) rmSync(pidFile, { force: true });
  return [...pids];
}

/** A running swtpm with a data channel and a control channel (unix sockets, or TCP in tests). */
export class SwtpmProcess {
  /** Resolves when swtpm exits, with its exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  private constructor(private readonly child: ChildProcess, private readonly endpoint: Endpoint) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => { process.off('exit', this.killOnExit); resolve(code); }));
    // If this process ends without stop() (an uncaught error, process.exit), do not leave
    // a TPM running behind; its state on disk stays consistent.
    process.on('exit', this.killOnExit);
  }

  private readonly killOnExit = (): void => { this.child.kill('SIGKILL'); };

  /**
   * Starts swtpm and powers the TPM on (CMD_INIT); the caller sends TPM2_Startup. An
   * swtpm left on the same state by a process that died is killed first. With TCP and
   * no port given, free ports are picked, and picked again if another program takes them
   * between the check and swtpm's bind.
   */
  static async start(options: SwtpmStartOptions): Promise<SwtpmProcess> {
    if ((options.listen ?? 'unix') === 'unix' || options.port !== undefined) return SwtpmProcess.startOn(options, options.port ?? 0);
    for (let attempt = 1; ; attempt++) {
      try {
        return await SwtpmProcess.startOn(options, await freePortPair(options.host ?? '127.0.0.1'));
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }
  }

  private static async startOn(options: SwtpmStartOptions, port: number): Promise<SwtpmProcess> {
    const host = options.host ?? '127.0.0.1';
    mkdirSync(options.tpmStateDir, { recursive: true, mode: 0o700 });
    const socketDir = options.socketDir ?? options.tpmStateDir;
    const files = swtpmSocketPaths(socketDir);
    await killStaleSwtpm(options.tpmStateDir, files.pidFile);
    let endpoint: Endpoint;
    let channels: string[];
    if ((options.listen ?? 'unix') === 'unix') {
      // A socket path is at most 107 bytes (sun_path); say so rather than let bind fail obscurely.
      if (Buffer.byteLength(files.ctrl) > 107) throw new TpmProcessError(`the swtpm socket path ${files.ctrl} is longer than a unix socket path may be (107 bytes); use a shorter state directory`);
      for (const f of [files.data, files.ctrl]) rmSync(f, { force: true });
      endpoint = { kind: 'unix', data: files.data, ctrl: files.ctrl };
      channels = ['--server', `type=unixio,path=${files.data},mode=0600`, '--ctrl', `type=unixio,path=${files.ctrl},mode=0600`];
    } else {
      endpoint = { kind: 'tcp', host, port, ctrlPort: port + 1 };
      channels = ['--server', `type=tcp,port=${port},bindaddr=${host}`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=${host}`];
    }
    const args = ['socket', '--tpm2', ...channels,
      '--tpmstate', `dir=${options.tpmStateDir}`,
      '--pid', `file=${files.pidFile}`,
      '--log', `file=${options.logFile ?? join(options.tpmStateDir, 'swtpm.log')},level=1`];
    if (options.keyFile) args.push('--key', `file=${options.keyFile},format=hex,mode=aes-256-cbc`);
    if (options.terminate) args.push('--terminate');
    const child = spawn('swtpm', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const p = new SwtpmProcess(child, endpoint);
    const where = endpoint.kind === 'unix' ? endpoint.ctrl : `${host}:${port + 1}`;
    try {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const early = await Promise.race([spawnError, p.exited.then((c) => new Error(`swtpm exited with ${c}: ${stderr.trim()}`)), sleep(50).then(() => undefined)]);
        if (early) throw new TpmProcessError(`cannot start swtpm on ${where}: ${early.message}`);
        if (await canConnect(endpoint.kind === 'unix' ? { path: endpoint.ctrl } : { host, port: port + 1 })) break;
        if (Date.now() > deadline) throw new TpmProcessError(`swtpm did not open its control channel ${where} within 10 s: ${stderr.trim()}`);
      }
      await p.control().init();
    } catch (e) {
      // Never leave a half-started swtpm behind: it would hold the state lock for the next try.
      child.kill('SIGKILL');
      await p.exited;
      throw e;
    }
    return p;
  }

  get pid(): number | undefined { return this.child.pid; }
  /** TCP only: the data channel's host and port (tests that hand them to tpm2-tools or to a second client). */
  get host(): string { return this.endpoint.kind === 'tcp' ? this.endpoint.host : '127.0.0.1'; }
  get port(): number { if (this.endpoint.kind !== 'tcp') throw new TpmProcessError('this swtpm listens on unix sockets, not TCP'); return this.endpoint.port; }
  get ctrlPort(): number { if (this.endpoint.kind !== 'tcp') throw new TpmProcessError('this swtpm listens on unix sockets, not TCP'); return this.endpoint.ctrlPort; }
  /** The unix data and control socket paths (undefined for TCP). */
  get sockets(): { data: string; ctrl: string } | undefined { return this.endpoint.kind === 'unix' ? { data: this.endpoint.data, ctrl: this.endpoint.ctrl } : undefined; }
  transport(timeoutMs?: number): SwtpmTcpTransport {
    return this.endpoint.kind === 'unix' ? new SwtpmTcpTransport({ path: this.endpoint.data, timeoutMs }) : new SwtpmTcpTransport({ host: this.endpoint.host, port: this.endpoint.port, timeoutMs });
  }
  control(): SwtpmControl { return this.endpoint.kind === 'unix' ? new SwtpmControl(this.endpoint.ctrl) : new SwtpmControl(this.endpoint.ctrlPort, this.endpoint.host); }
  /** The TCTI string tpm2-tools use to reach this swtpm (TCP only: TSS 3.2 has no unix-socket swtpm TCTI). */
  get tcti(): string {
    if (this.endpoint.kind !== 'tcp') throw new TpmProcessError('tpm2-tools reach swtpm over TCP only; start it with listen: "tcp" (tests only)');
    return `swtpm:host=${this.endpoint.host},port=${this.endpoint.port}`;
  }

  /** Asks swtpm to save its state and exit; kills it if it does not. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.control().shutdown().catch(() => undefined);
    const code = await Promise.race([this.exited, sleep(3000).then(() => 'timeout' as const)]);
    if (code === 'timeout') { this.child.kill('SIGKILL'); await this.exited; }
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
function canConnect(to: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(to);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
