// `vigil log`: proofs cut from a log directory, and their offline check.
//
//   vigil log prove --log DIR --seq N [--batch B] [--out FILE]
//   vigil log consistency --log DIR --from BATCH [--to BATCH] [--out FILE]
//   vigil log check-proof FILE
//
// Exit 0 on success, 1 when the log or the proof does not check (the reason in words), 2
// for bad usage. `vigil verify --proof FILE` also checks that the proof's checkpoints are
// anchored in the BMC's TPM.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LogVerifyError } from './verify.js';
import { LogError } from './store.js';
import { ProofError, checkProof, parseProof, proveConsistency, proveInclusion, type ProofFile } from './proof.js';

const USAGE = `usage: vigil log prove --log DIR --seq N [--batch B] [--out FILE]
       vigil log consistency --log DIR --from BATCH [--to BATCH] [--out FILE]
       vigil log check-proof FILE

  prove        the inclusion proof of entry seq N under the checkpoint of batch B (default:
               the last sealed batch): the entry, its audit path and the seal
  consistency  the consistency proof from the checkpoint of batch BATCH to that of --to
               (default: the last sealed batch): the later tree extends the earlier one
  check-proof  checks a proof file's arithmetic (no BMC; \`vigil verify --proof FILE\`
               also proves its checkpoints anchored)

  The log is read and verified whole (chain, seqs, seals) before a proof is cut.
  --out FILE   write the proof there (default: standard output)`;

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag} ${v}: expected an integer ≥ 1`);
  return Number(v);
}

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') { process.stdout.write(USAGE + '\n'); return sub === undefined ? 2 : 0; }
  try {
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: {
      log: { type: 'string' }, seq: { type: 'string' }, batch: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, out: { type: 'string' },
    } });
    const write = (p: ProofFile): void => {
      const text = JSON.stringify(p) + '\n';
      if (values.out) writeFileSync(values.out, text, { mode: 0o644 }); else process.stdout.write(text);
    };
    switch (sub) {
      case 'prove': {
        if (!values.log || values.seq === undefined) throw new UsageError('prove needs --log DIR and --seq N');
        write(proveInclusion(values.log, positive(values.seq, '--seq') as number, positive(values.batch, '--batch')));
        return 0;
      }
      case 'consistency': {
        if (!values.log || values.from === undefined) throw new UsageError('consistency needs --log DIR and --from BATCH');
        write(proveConsistency(values.log, positive(values.from, '--from') as number, positive(values.to, '--to')));
        return 0;
      }
      case 'check-proof': {
        const file = positionals[0];
        if (!file || positionals.length > 1) throw new UsageError('check-proof needs one proof file');
        let text: string;
        try { text = readFileSync(file, 'utf8'); } catch (e) { throw new ProofError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
        const p = parseProof(text, file);
        const cps = checkProof(p);
        const what = p.vigilProof === 'inclusion' ? `entry seq ${p.seq} is in the tree of batch ${p.seal.batch} (${p.seal.treeSize} entries)` : `the tree of batch ${p.to.batch} (${p.to.treeSize} entries) extends that of batch ${p.from.batch} (${p.from.treeSize} entries)`;
        process.stdout.write(`proof checks: ${what}; checkpoint${cps.length > 1 ? 's' : ''} ${cps.join(', ')} (not yet shown anchored: vigil verify --proof)\n`);
        return 0;
      }
      default: throw new UsageError(`unknown subcommand '${sub}'`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`vigil log: ${(e as Error).message}\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof ProofError || e instanceof LogVerifyError || e instanceof LogError) {
      process.stderr.write(`vigil log: FAILED: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
