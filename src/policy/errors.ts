// Policy errors carry where they are (file, line, column, 1-based) so `vigil policy check`
// and a reloading agent can print `FILE:LINE:COL: message` lines a person can act on.

export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export interface PolicyProblem extends SourcePos {
  message: string;
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

/** Every problem found in a set of policy files; nothing of a set with problems is used. */
export class PolicyError extends Error {
  readonly code = 'VIGIL_BAD_POLICY';
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'PolicyError';
  }
}
