// Running swtpm (the software TPM) for the BMC service and for tests: provisioning a
// state directory with EK certificates from a local CA, starting it on TCP ports,
// powering it on through the control channel, and stopping it.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TpmProcessError } from './errors.js';
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
}

/**
 * Manufactures a TPM state in `stateDir/tpm` like a TPM vendor would: EKs, an RSA EK
 * certificate (and platform certificate) signed by a local CA kept in `stateDir/ca`.
 * Does nothing when the state exists. The CA configuration lives in the state directory
 * so separate instances never share a CA by accident.
 */
export async function provisionSwtpm(stateDir: string): Promise<ProvisionResult> {
  const tpmDir = join(stateDir, 'tpm');
  const caDir = join(stateDir, 'ca');
  mkdirSync(tpmDir, { recursive: true, mode: 0o700 });
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  const created = !existsSync(join(tpmDir, 'tpm2-00.permall'));
  if (created) {
    const caConf = join(stateDir, 'swtpm-localca.conf');
    const optsFile = join(stateDir, 'swtpm-localca.options');
    const setupConf = join(stateDir, 'swtpm_setup.conf');
    writeFileSync(caConf, [`statedir = ${caDir}`, `signingkey = ${join(caDir, 'signkey.pem')}`, `issuercert = ${join(caDir, 'issuercert.pem')}`, `certserial = ${join(caDir, 'certserial')}`, ''].join('\n'));
    writeFileSync(optsFile, ['--platform-manufacturer vigil', '--platform-version 1.0', '--platform-model vigil-bmc', ''].join('\n'));
    writeFileSync(setupConf, ['create_certs_tool = swtpm_localca', `create_certs_tool_config = ${caConf}`, `create_certs_tool_options = ${optsFile}`, 'active_pcr_banks = sha256', ''].join('\n'));
    try {
      await execFileP('swtpm_setup', ['--tpm2', '--tpmstate', tpmDir, '--create-ek-cert', '--create-platform-cert', '--config', setupConf,
        '--pcr-banks', 'sha256', '--logfile', join(stateDir, 'swtpm_setup.log')], { timeout: 60_000 });
    } catch (e) {
      const log = await readFile(join(stateDir, 'swtpm_setup.log'), 'utf8').catch(() => '');
      throw new TpmProcessError(`swtpm_setup failed to manufacture the TPM in ${tpmDir}: ${(e as Error).message}\n${log.slice(-2000)}`, { cause: e });
    }
  }
  const caCertificates: string[] = [];
  for (const f of ['swtpm-localca-rootca-cert.pem', 'issuercert.pem']) {
    const p = join(caDir, f);
    if (existsSync(p)) caCertificates.push(await readFile(p, 'utf8'));
  }
  return { caCertificates, created };
}

export interface SwtpmStartOptions {
  /** Directory holding the TPM state (swtpm's --tpmstate dir). */
  tpmStateDir: string;
  host?: string;
  /** Data port; the control port is port+1. Free ports are picked when absent. */
  port?: number;
  logFile?: string;
}

/** A running swtpm with a TCP data channel and a TCP control channel. */
export class SwtpmProcess {
  private exited: Promise<number | null>;
  private constructor(private readonly child: ChildProcess, readonly host: string, readonly port: number, readonly ctrlPort: number) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => { process.off('exit', this.killOnExit); resolve(code); }));
    // If this process ends without stop() (an uncaught error, process.exit), do not leave
    // a TPM running behind; its state on disk stays consistent.
    process.on('exit', this.killOnExit);
  }

  private readonly killOnExit = (): void => { this.child.kill('SIGKILL'); };

  /**
   * Starts swtpm and powers the TPM on (CMD_INIT); the caller sends TPM2_Startup. With
   * no port given, free ports are picked, and picked again if another program takes
   * them between the check and swtpm's bind.
   */
  static async start(options: SwtpmStartOptions): Promise<SwtpmProcess> {
    if (options.port !== undefined) return SwtpmProcess.startOn(options, options.port);
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
    const args = ['socket', '--tpm2',
      '--server', `type=tcp,port=${port},bindaddr=${host}`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=${host}`,
      '--tpmstate', `dir=${options.tpmStateDir}`,
      '--log', `file=${options.logFile ?? join(options.tpmStateDir, 'swtpm.log')},level=1`];
    const child = spawn('swtpm', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const p = new SwtpmProcess(child, host, port, port + 1);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const early = await Promise.race([spawnError, p.exited.then((c) => new Error(`swtpm exited with ${c}: ${stderr.trim()}`)), sleep(50).then(() => undefined)]);
      if (early) throw new TpmProcessError(`cannot start swtpm on ${host}:${port}: ${early.message}`);
      if (await canConnect(host, port + 1)) break;
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new TpmProcessError(`swtpm did not open its control port ${host}:${port + 1} within 10 s: ${stderr.trim()}`); }
    }
    await p.control().init();
    return p;
  }

  get pid(): number | undefined { return this.child.pid; }
  transport(timeoutMs?: number): SwtpmTcpTransport { return new SwtpmTcpTransport({ host: this.host, port: this.port, timeoutMs }); }
  control(): SwtpmControl { return new SwtpmControl(this.ctrlPort, this.host); }
  /** The TCTI string tpm2-tools use to reach this swtpm. */
  get tcti(): string { return `swtpm:host=${this.host},port=${this.port}`; }

  /** Asks swtpm to save its state and exit; kills it if it does not. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await this.control().shutdown().catch(() => undefined);
    const code = await Promise.race([this.exited, sleep(3000).then(() => 'timeout' as const)]);
    if (code === 'timeout') { this.child.kill('SIGKILL'); await this.exited; }
  }
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
