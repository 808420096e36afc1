// `vigil verify`: exit 0 with `verified N entries, seq A..B, anchored up to TIME`, or exit 1
// with the first inconsistency in words; 2 for bad usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bmcClient } from './agent-log.js';
import { parseProof, ProofError } from '../log/index.js';
import { verify, verifyProof, VerifyFailure } from './verifier.js';

const USAGE = `usage: vigil verify --bmc URL --token FILE --log DIR [--state DIR] [--trust CA.pem] [--json]
                    [--ca FILE] [--pin HEX] [--max-silence SECONDS]
       vigil verify --bmc URL --token FILE --proof FILE [--state DIR] [--trust CA.pem] [--json] ...

Proves the log directory complete and unmodified up to the last checkpoint the BMC's TPM
holds, or names the first inconsistency (exit 1).

  --bmc URL          the BMC (https://HOST:PORT)
  --token FILE       the BMC's verifier token
  --log DIR          the agent's log directory (--log of vigil agent)
  --state DIR        what this verifier learned (pinned EK and AK, last quote, last
                     verified checkpoint): a later run detects a rollback; keep it
  --trust FILE       PEM certificates the EK certificate must chain to (repeatable; needed to enrol)
  --ca FILE          PEM certificate(s) the BMC's HTTPS certificate must chain to
  --pin HEX          SHA-256 fingerprint of the BMC's certificate (its tls-cert.sha256)
  --max-silence S    longest accepted silence of an agent that did not stop cleanly
                     (default: three heartbeats and 5 s)
  --proof FILE       instead of a log: a proof from \`vigil log prove\` or \`vigil log
                     consistency\`; checks it, and that its checkpoints are anchored
  --json             print the result (or the failure) as JSON`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: {
      bmc: { type: 'string' }, token: { type: 'string' }, log: { type: 'string' }, state: { type: 'string' }, trust: { type: 'string', multiple: true },
      ca: { type: 'string' }, pin: { type: 'string' }, proof: { type: 'string' }, 'max-silence': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) {
    process.stderr.write(`vigil verify: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const missing = (['bmc', 'token', ...(values.proof ? [] : ['log'] as const)] as const).filter((k) => !values[k]);
  if (values.proof && values.log) { process.stderr.write(`vigil verify: --proof and --log exclude each other (a proof is checked without the log)\n${USAGE}\n`); return 2; }
  if (missing.length > 0) { process.stderr.write(`vigil verify: missing ${missing.map((m) => `--${m}`).join(', ')}\n${USAGE}\n`); return 2; }
  const say = (ok: boolean, text: string, json: unknown) => {
    if (values.json) process.stdout.write(JSON.stringify(json) + '\n');
    else (ok ? process.stdout : process.stderr).write(text + '\n');
  };
  try {
    // A file may hold several certificates (a bundle): each is one trust anchor.
    const trustPems = (values.trust ?? []).flatMap((f) => { try { return pemBlocks(readFileSync(f, 'utf8')); } catch (e) { throw new VerifyFailure('ek-certificate', `--trust ${f}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); } });
    let maxSilenceMs: number | undefined;
    if (values['max-silence'] !== undefined) {
      const n = Number(values['max-silence']);
      if (!Number.isFinite(n) || n <= 0) { process.stderr.write(`vigil verify: --max-silence ${values['max-silence']}: expected a positive number of seconds\n`); return 2; }
      maxSilenceMs = n * 1000;
    }
    let client;
    try {
      client = bmcClient({ bmc: values.bmc as string, tokenFile: values.token as string, caFile: values.ca, pinSha256: values.pin });
    } catch (e) { throw new VerifyFailure('bmc', (e as Error).message.replace('--bmc-token', '--token').replace('--bmc-ca', '--ca')); }
    if (values.proof) {
      let proof;
      try { proof = parseProof(readFileSync(values.proof, 'utf8'), values.proof); } catch (e) {
        throw new VerifyFailure('proof', e instanceof ProofError ? e.message : `--proof ${values.proof}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      const r = await verifyProof({ client, proof, stateDir: values.state, trustPems });
      const what = proof.vigilProof === 'inclusion' ? `entry seq ${proof.seq} is in the anchored tree of batch ${proof.seal.batch}` : `the anchored tree of batch ${proof.to.batch} extends that of batch ${proof.from.batch}`;
      const text = [`proof verified: ${what} (${r.anchored.map((a) => `anchor #${a.anchorSeq} at ${a.time}`).join(', ')})`, ...r.notes.map((n) => `  note: ${n}`)].join('\n');
      say(true, text, { ok: true, ...r });
      return 0;
    }
    const r = await verify({ client, logDir: values.log as string, stateDir: values.state, trustPems, maxSilenceMs });
    const text = [`verified ${r.entries} entries, seq ${r.firstSeq}..${r.lastSeq}, anchored up to ${r.anchoredTime || '(nothing anchored)'} (seq ${r.anchoredSeq})`, ...r.notes.map((n) => `  note: ${n}`)].join('\n');
    say(true, text, { ok: true, ...r });
    return 0;
  } catch (e) {
    if (e instanceof VerifyFailure) {
      say(false, `vigil verify: FAILED (${e.check}): ${e.message}`, { ok: false, check: e.check, message: e.message });
      return 1;
    }
    throw e;
  }
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}
