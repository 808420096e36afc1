// Where policies come from: the default rule set shipped with vigil (policies/default),
// then every FILE or DIR given, in order; a directory's *.yaml and *.yml files in name
// order, its subdirectories after its files. Later files extend or override lists and
// macros, and override rules, of earlier ones.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerRef } from '../events/index.js';
import type { ContainerFacts } from './activation.js';
import { readPolicyText, type PolicyDoc } from './document.js';
import { PolicyError, type PolicyProblem } from './errors.js';
import { PolicySet } from './engine.js';

/** The default rule set's directory (from dist/src/policy or src/policy: the repository's policies/default). */
export const DEFAULT_POLICY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), ...(import.meta.url.includes('/dist/') ? ['..', '..', '..'] : ['..', '..']), 'policies', 'default');

const POLICY_FILE = /\.ya?ml$/;

/** The policy files a path stands for, in load order. */
export function policyFiles(path: string, problems: PolicyProblem[]): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    problems.push({ file: path, line: 1, col: 1, message: `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
    return [];
  }
  if (!st.isDirectory()) return [path];
  const entries = readdirSync(path, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files = entries.filter((e) => !e.isDirectory() && POLICY_FILE.test(e.name)).map((e) => join(path, e.name));
  const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).flatMap((e) => policyFiles(join(path, e.name), problems));
  return [...files, ...dirs];
}

export interface LoadOptions {
  /** Load the default rule set first (default true). */
  defaults?: boolean;
  facts?: (c: ContainerRef) => ContainerFacts | undefined;
}

export interface LoadedPolicies {
  set: PolicySet;
  files: string[];
  documents: PolicyDoc[];
}

/** Reads and compiles the policies; throws a PolicyError with every problem found. */
export function loadPolicies(paths: readonly string[], opts: LoadOptions = {}): LoadedPolicies {
  const problems: PolicyProblem[] = [];
  const files = [...(opts.defaults === false ? [] : policyFiles(DEFAULT_POLICY_DIR, problems)), ...paths.flatMap((p) => policyFiles(p, problems))];
  const documents: PolicyDoc[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file, line: 1, col: 1, message: `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
      continue;
    }
    for (const doc of readPolicyText(text, file, problems)) {
      const other = names.get(doc.name);
      if (other) problems.push({ ...doc.pos, message: `policy name '${doc.name}' is already used by ${other}` });
      names.set(doc.name, `${doc.file}:${doc.pos.line}`);
      documents.push(doc);
    }
  }
  if (problems.length === 0) return { set: PolicySet.build(documents, opts.facts), files, documents };
  // Compile what could be read anyway, so one run reports every problem: a CEL error in one
  // file next to a YAML error in another. With documents left out for their problems, what
  // names them (a list, a macro, an overridden rule) cannot be judged and is not reported.
  const dropped = problems.some((p) => !p.message.startsWith('policy name '));
  try {
    PolicySet.build(documents, opts.facts);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    for (const p of e.problems) if (!dropped || !MAYBE_DROPPED.test(p.message)) problems.push(p);
  }
  const order = new Map(files.map((f, i) => [f, i]));
  const sorted = problems.map((p, i) => ({ p, i })).sort((a, b) =>
    (order.get(a.p.file) ?? -1) - (order.get(b.p.file) ?? -1) || a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i);
  throw new PolicyError(sorted.map((x) => x.p));
}

/** Build problems that a document left out (for its own problems) may have caused. */
const MAYBE_DROPPED = /unknown name '|append to a list no earlier policy defines|override of unknown rule/;
