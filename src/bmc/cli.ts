// `vigil bmc`: run the BMC service until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { startBmcService } from './service.js';
import { BmcError } from './errors.js';
import type { TpmSource } from './bmc-tpm.js';
import type { KeyAlgorithm } from '../tpm/index.js';

const USAGE = `usage: vigil bmc --state-dir DIR [--listen HOST:PORT] [--tpm swtpm|/dev/tpmrm0|swtpm-unix:PATH|swtpm-tcp:HOST:PORT]
                 [--tls-cert FILE --tls-key FILE | --plain-http] [--pcr N] [--ek-alg rsa|ecc] [--ak-alg ecc|rsa] [--log]

Runs the BMC service: owns the TPM, extends the host's log anchors into a PCR and
answers the verifier's quote requests over a Redfish-style HTTPS API.

  --state-dir DIR   TPM state, local CA, AK blob, role tokens, TLS certificate and anchor list (created on first run)
  --listen H:P      management address (default 127.0.0.1:8443)
  --tpm T           'swtpm' (default; started and provisioned in the state dir, reached over unix sockets there),
                    a device path, or a running swtpm's data channel, swtpm-unix:PATH or swtpm-tcp:HOST:PORT
                    (it outlives this service, which never shuts it down)
  --tls-cert FILE   the operator's certificate (PEM) and its key; without them a self-signed certificate is
  --tls-key FILE    generated as DIR/tls-cert.pem, its SHA-256 fingerprint in DIR/tls-cert.sha256 (clients pin it)
  --plain-http      serve HTTP, not HTTPS: allowed on a loopback address only (tests)
  --pcr N           the anchor PCR (default 23)
  --ek-alg A        EK template: rsa (default, RSA 2048) or ecc (P-256); swtpm gets a local-CA certificate for both
  --ak-alg A        attestation key: ecc (default, P-256 ECDSA) or rsa (RSASSA)
  --log             log requests to stderr

Tokens: DIR/tokens/host.token (may append anchors) and DIR/tokens/verifier.token
(may read and request quotes), sent as 'Authorization: Bearer <token>'.`;

function parseListen(s: string, option = '--listen '): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new BmcError('BMC_CONFIG', `${option}${s}: expected HOST:PORT, e.g. 10.200.0.2:8443`);
  return { host: (m[1] ?? m[2]) as string, port };
}
function parseTpm(v: string | undefined): TpmSource {
  if (!v || v === 'swtpm') return { kind: 'swtpm' };
  if (v.startsWith('swtpm-unix:')) return { kind: 'swtpm-unix', path: v.slice('swtpm-unix:'.length) };
  if (!v.startsWith('swtpm-tcp:')) return { kind: 'device', path: v };
  const { host, port } = parseListen(v.slice('swtpm-tcp:'.length), '--tpm swtpm-tcp:');
  return { kind: 'swtpm-tcp', host, port };
}
function parseAlg(name: string, v: string | undefined): KeyAlgorithm | undefined {
  if (v === undefined) return undefined;
  if (v !== 'rsa' && v !== 'ecc') throw new BmcError('BMC_CONFIG', `${name} ${v}: expected rsa or ecc`);
  return v;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: {
      'state-dir': { type: 'string' }, listen: { type: 'string' }, tpm: { type: 'string' }, pcr: { type: 'string' },
      'ek-alg': { type: 'string' }, 'ak-alg': { type: 'string' }, log: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      'plain-http': { type: 'boolean' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' },
    } }));
  } catch (e) {
    process.stderr.write(`vigil bmc: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  let stop: (() => void) | undefined;
  try {
    if (!values['state-dir']) throw new BmcError('BMC_CONFIG', '--state-dir is required');
    const { host, port } = parseListen(values.listen ?? '127.0.0.1:8443');
    const source = parseTpm(values.tpm);
    const pcr = values.pcr === undefined ? undefined : Number(values.pcr);
    if (pcr !== undefined && !(Number.isInteger(pcr) && pcr >= 0 && pcr <= 23)) throw new BmcError('BMC_CONFIG', `--pcr ${values.pcr}: expected 0..23`);
    // Listen for the stop signal before starting, so a signal during start-up still
    // ends in an orderly close (swtpm shut down, anchor list closed).
    const stopped = new Promise<void>((resolveStop) => {
      stop = () => { process.off('SIGINT', stop as () => void); process.off('SIGTERM', stop as () => void); resolveStop(); };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const service = await startBmcService({
      stateDir: resolve(values['state-dir']), host, port, source, anchorPcr: pcr,
      ekAlgorithm: parseAlg('--ek-alg', values['ek-alg']), akAlgorithm: parseAlg('--ak-alg', values['ak-alg']), logger: values.log ?? false,
      plainHttp: values['plain-http'] ?? false,
      tlsCertFile: values['tls-cert'] === undefined ? undefined : resolve(values['tls-cert']),
      tlsKeyFile: values['tls-key'] === undefined ? undefined : resolve(values['tls-key']),
      // The TPM is gone: end now (non-zero) so a supervisor restarts the BMC, rather than
      // answer every request with an error.
      onFatal: (err) => { process.stderr.write(`vigil bmc: ${err.message}\n`); process.exit(1); },
    });
    process.stdout.write(`vigil bmc: listening on ${service.url} (anchor PCR ${service.anchorPcr}, AK ${service.tpm.ak.name.toString('hex')})\n`
      + (service.tls ? `vigil bmc: TLS certificate ${service.tls.certFile}, SHA-256 fingerprint ${service.tls.fingerprintSha256}\n` : 'vigil bmc: plain HTTP (loopback only)\n')
      + `vigil bmc: host token ${service.tokenFiles.host}, verifier token ${service.tokenFiles.verifier}\n`);
    if (service.unsettled) process.stderr.write(`vigil bmc: anchors and quotes are refused: ${service.unsettled}\n`);
    await stopped;
    await service.close();
    process.stdout.write('vigil bmc: stopped\n');
    return 0;
  } catch (e) {
    process.stderr.write(`vigil bmc: ${(e as Error).message}\n`);
    // A failed start ends the process: nothing may keep it alive (the signal handlers
    // would make it ignore SIGTERM), and whatever was started has been stopped.
    stop?.();
    process.exit(e instanceof BmcError && e.code === 'BMC_CONFIG' ? 2 : 1);
  }
}
