// The BMC's ownership of its TPM: which TPM (swtpm started here, or a device), the
// EK re-derived from the standard template, the AK created once and reloaded from the
// state directory, and the three things the API needs: extend, quote, activate.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Alg, Capability, DeviceTransport, SwtpmProcess, SwtpmTcpTransport, TpmClient, TpmResponseError, activateCredential, createAk, createEk, loadAk,
  provisionSwtpm, readEkCertificate, unmarshalPublic,
  type AkBlob, type KeyAlgorithm, type LoadedKey, type PcrSelection, type QuoteResult, type TimeInfo, type TpmPublic,
} from '../tpm/index.js';
import { BmcError } from './errors.js';

/**
 * The PCR the anchors go into. PCR 23 ("application support" in the PC Client PCR
 * profile) is free for applications and is not touched by firmware or the OS boot
 * chain, so its only writer is this service. Like PCR 16, it can be reset from locality
 * 0 with TPM2_PCR_Reset; that is acceptable because only the BMC can send commands to
 * this TPM, and the BMC never resets it. A TPM reset zeroes it as well, which the
 * verifier sees in the quote's resetCount.
 */
export const DEFAULT_ANCHOR_PCR = 23;

/**
 * Which TPM: an swtpm this service starts and owns (powered on at start: each start is a
 * TPM reset; reached over unix sockets in the state directory), a device, or a TPM
 * simulator already running with the swtpm protocol on a unix socket
 * (`--tpm swtpm-unix:PATH`) or TCP (`--tpm swtpm-tcp:HOST:PORT`), which like a device
 * outlives this process and is not this service's to shut down.
 */
export type TpmSource = { kind: 'swtpm' } | { kind: 'device'; path: string } | { kind: 'swtpm-tcp'; host: string; port: number } | { kind: 'swtpm-unix'; path: string };

export function describeSource(source: TpmSource): string {
  switch (source.kind) {
    case 'swtpm': return 'swtpm';
    case 'device': return source.path;
    case 'swtpm-tcp': return `swtpm-tcp:${source.host}:${source.port}`;
    case 'swtpm-unix': return `swtpm-unix:${source.path}`;
  }
}

export interface BmcTpmOptions {
  stateDir: string;
  source: TpmSource;
  ekAlgorithm?: KeyAlgorithm;
  akAlgorithm?: KeyAlgorithm;
}

interface StoredAk { algorithm: KeyAlgorithm; outPrivate: string; outPublic: string }

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Reads the AK blob saved on first run. Every way the file can be wrong is reported with
 * its path and the way out, because "cannot bring up the TPM" sends an operator looking
 * at the TPM when the fault is one file in the state directory.
 */
function readStoredAk(path: string, wanted: KeyAlgorithm): AkBlob {
  const damaged = (what: string, cause?: unknown): BmcError => new BmcError('BMC_STATE',
    `the attestation key file ${path} ${what}; delete it to create a new AK on the next start (verifiers must then enrol the new AK)`, { cause });
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw damaged(`cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e); }
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw damaged(`is not JSON (${(e as Error).message})`, e); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw damaged('does not hold a JSON object');
  const o = v as Record<string, unknown>;
  if (o.algorithm !== 'rsa' && o.algorithm !== 'ecc') throw damaged(`has algorithm ${JSON.stringify(o.algorithm)}, expected "rsa" or "ecc"`);
  for (const k of ['outPrivate', 'outPublic'] as const) {
    const f = o[k];
    if (typeof f !== 'string' || f.length === 0 || !BASE64.test(f)) throw damaged(`has no Base64 string in ${k}`);
  }
  const stored = o as unknown as StoredAk;
  if (stored.algorithm !== wanted) throw new BmcError('BMC_CONFIG', `the state directory holds an ${stored.algorithm} AK but ${wanted} was asked for; use --ak-alg ${stored.algorithm} or a new state directory`);
  const bytes = Buffer.from(stored.outPublic, 'base64');
  let pub: TpmPublic;
  try { pub = unmarshalPublic(bytes); } catch (e) { throw damaged(`has an outPublic that is not a TPMT_PUBLIC (${(e as Error).message})`, e); }
  if (pub.type !== stored.algorithm) throw damaged(`says ${stored.algorithm} but its outPublic is an ${pub.type} key`);
  return { outPrivate: Buffer.from(stored.outPrivate, 'base64'), outPublic: { public: pub, bytes } };
}

/**
 * Flushes transient objects and loaded sessions from a TPM this service does not start.
 * The TPM belongs to the BMC alone, so any it holds were left by an earlier BMC process
 * that ended without flushing them (a crash); swtpm has room for three objects, and the
 * EK, a policy session and the AK need all three. Through /dev/tpmrm0 the kernel's
 * resource manager shows none, and this does nothing.
 */
async function flushLeftovers(client: TpmClient): Promise<void> {
  const handles = [...await client.listHandles(0x80000000)];
  const sessions = await client.getCapability(Capability.HANDLES, 0x02000000, 64);
  // Loaded policy sessions are listed with their 0x03 handles under the 0x02 range.
  if (sessions.data.capability === 'handles') handles.push(...sessions.data.handles.filter((h) => h >>> 24 === 0x02 || h >>> 24 === 0x03));
  for (const h of handles) await client.flushContext(h);
}

export class BmcTpm {
  private constructor(
    readonly client: TpmClient,
    private readonly swtpm: SwtpmProcess | undefined,
    readonly ek: LoadedKey,
    readonly ekAlgorithm: KeyAlgorithm,
    readonly ekCertificate: Buffer | undefined,
    readonly ak: LoadedKey,
    readonly akAlgorithm: KeyAlgorithm,
    /** PEM CA certificates of the local CA (swtpm only); real TPMs chain to their vendor. */
    readonly caCertificates: string[],
    /** The PCR banks (hash algorithms) this TPM has active: a quote may select only these. */
    readonly banks: readonly number[],
  ) {}

  /** The pid of the swtpm this service started (undefined for a device or an external TPM). */
  get swtpmPid(): number | undefined { return this.swtpm?.pid; }
  /** Resolves when the swtpm this service owns ends (never, for a TPM it does not own). */
  get swtpmExited(): Promise<number | null> { return this.swtpm?.exited ?? new Promise(() => undefined); }

  static async open(options: BmcTpmOptions): Promise<BmcTpm> {
    const ekAlgorithm = options.ekAlgorithm ?? 'rsa';
    const akAlgorithm = options.akAlgorithm ?? 'ecc';
    let swtpm: SwtpmProcess | undefined;
    let client: TpmClient;
    let caCertificates: string[] = [];
    try {
      if (options.source.kind === 'swtpm') {
        const provisioned = await provisionSwtpm(options.stateDir);
        caCertificates = provisioned.caCertificates;
        // Unix sockets in the 0700 state directory: nothing else on this machine can send
        // the TPM a command (CMD_GET_STATEBLOB would hand out its endorsement seed, CMD_INIT
        // would stop every quote). --terminate ends swtpm with the connection, so a BMC
        // killed with SIGKILL leaves no swtpm behind holding the state lock.
        swtpm = await SwtpmProcess.start({
          tpmStateDir: join(options.stateDir, 'tpm'), logFile: join(options.stateDir, 'swtpm.log'), keyFile: provisioned.keyFile, terminate: true,
        });
        client = new TpmClient(swtpm.transport());
        // swtpm was just powered on: this is a TPM Reset, as a BMC boot would be.
        await client.startup('clear');
      } else {
        const src = options.source;
        client = new TpmClient(src.kind === 'device' ? new DeviceTransport(src.path)
          : src.kind === 'swtpm-unix' ? new SwtpmTcpTransport({ path: src.path })
            : new SwtpmTcpTransport({ host: src.host, port: src.port }));
        await client.ensureStarted();
        await flushLeftovers(client);
      }
      const ek = await createEk(client, ekAlgorithm);
      const ekCertificate = await readEkCertificate(client, ekAlgorithm);
      const akPath = join(options.stateDir, 'ak.json');
      let ak: LoadedKey;
      if (existsSync(akPath)) {
        const blob = readStoredAk(akPath, akAlgorithm);
        try {
          ak = await loadAk(client, ek.handle, blob);
        } catch (e) {
          // The TPM checks the blob's integrity against its EK: a refusal means the file
          // was altered or belongs to another TPM (or an EK of another algorithm).
          if (!(e instanceof TpmResponseError)) throw e;
          throw new BmcError('BMC_STATE', `the attestation key file ${akPath} does not load under this TPM's ${ekAlgorithm} EK (${e.message}): it is damaged or was made by another TPM or with another --ek-alg; `
            + 'delete it to create a new AK on the next start (verifiers must then enrol the new AK)', { cause: e });
        }
      } else {
        const blob = await createAk(client, ek.handle, akAlgorithm);
        const stored: StoredAk = { algorithm: akAlgorithm, outPrivate: blob.outPrivate.toString('base64'), outPublic: blob.outPublic.bytes.toString('base64') };
        writeFileSync(akPath, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600 });
        ak = await loadAk(client, ek.handle, blob);
      }
      const pcrs = await client.getCapability(Capability.PCRS, 0, 1);
      const banks = pcrs.data.capability === 'pcrs' ? pcrs.data.pcrs.filter((b) => b.pcrs.length > 0).map((b) => b.hashAlg) : [];
      return new BmcTpm(client, swtpm, ek, ekAlgorithm, ekCertificate, ak, akAlgorithm, caCertificates, banks);
    } catch (e) {
      await swtpm?.stop().catch(() => undefined);
      if (e instanceof BmcError) throw e;
      throw new BmcError('BMC_TPM', `cannot bring up the TPM (${describeSource(options.source)}): ${(e as Error).message}`, { cause: e });
    }
  }

  /** Extends `digest` (32 bytes) into the SHA-256 bank of `pcr`. */
  extend(pcr: number, digest: Buffer): Promise<void> {
    return this.client.pcrExtend(pcr, [{ hashAlg: Alg.SHA256, digest }]);
  }

  /** The value of `pcr` in the SHA-256 bank. */
  async readPcr(pcr: number): Promise<Buffer> {
    return (await this.client.pcrRead(Alg.SHA256, [pcr])).get(pcr) as Buffer;
  }

  quote(nonce: Buffer, selection: PcrSelection[], scheme?: { scheme: number; hashAlg: number }): Promise<QuoteResult> {
    return this.client.quote(this.ak.handle, nonce, selection, { scheme });
  }

  readClock(): Promise<TimeInfo> { return this.client.readClock(); }

  activate(credentialBlob: Buffer, secret: Buffer): Promise<Buffer> {
    return activateCredential(this.client, this.ak.handle, this.ek.handle, credentialBlob, secret);
  }

  async close(): Promise<void> {
    try {
      await this.client.flushContext(this.ak.handle).catch(() => undefined);
      await this.client.flushContext(this.ek.handle).catch(() => undefined);
      // An orderly shutdown, so the next Startup is not counted as a dirty one, but only
      // of the swtpm this service powers on and off. A device or an external TPM goes on
      // serving others after this service ends; TPM2_Shutdown there would tell the TPM its
      // power is about to go and leave its orderly state wrong for whoever powers it off.
      if (this.swtpm) await this.client.shutdown('clear').catch(() => undefined);
      await this.client.close();
    } finally {
      await this.swtpm?.stop();
    }
  }
}

