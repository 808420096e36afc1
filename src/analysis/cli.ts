// `vigil analyze IMAGE`: the system-call allow-list of an image, as a summary, as JSON, or
// as a Docker seccomp profile.
import { writeFileSync } from 'node:fs';
import { analyzeImage, type AnalysisResult, type UnresolvedMode } from './analyze.js';
import { AnalysisError } from './errors.js';
import { seccompProfile } from './seccomp.js';

const USAGE = `usage: vigil analyze IMAGE [options]

IMAGE is a local Docker image (name or id), a \`docker save\` archive, or an OCI layout
(a directory or a tar of one).

options:
  --format text|json     output: a readable summary (default) or JSON
                         {image, syscalls, numbers, unresolved, sources, ...}
  --seccomp FILE         also write a Docker/OCI seccomp profile for docker run --security-opt seccomp=FILE
  --all-elf              analyse every ELF executable in the image, not only what the entrypoint/cmd runs
  --unresolved open|closed
                         with unresolved system-call sites: allow everything (open, the default)
                         or keep the list as derived (closed)
  --fail-closed          the same as --unresolved closed
  --cache DIR            cache directory (default $VIGIL_CACHE_DIR or ~/.cache/vigil/analysis)
  --no-cache             neither read nor write the cache
  --docker-socket PATH   Docker Engine API socket (default /var/run/docker.sock)
`;

/** Docker's default seccomp profile allows this many system calls on x86-64 (default capabilities). */
export const DOCKER_DEFAULT_ALLOWED = 298;

function text(r: AnalysisResult): string {
  const lines = [
    `image ${r.image.ref} (${r.image.id})`,
    `${r.syscalls.length} system calls allowed (Docker's default profile allows ${DOCKER_DEFAULT_ALLOWED})${r.allowAll ? ' — NOT ENFORCEABLE: unresolved sites and --unresolved open, so everything is allowed' : ''}`,
    '',
    'programs:',
    ...r.programs.map((p) => `  ${p.path}  (${p.reason}; ${p.modules.length - 1} more file(s))`),
    '',
    'system calls:',
  ];
  const width = Math.max(...r.syscalls.map((s) => s.length));
  for (const s of r.syscalls) {
    const src = r.sources[s] ?? [];
    const first = src.slice(0, 3).map((x) => x.file).join(', ');
    lines.push(`  ${s.padEnd(width)}  ${first}${src.length > 3 ? ` (+${src.length - 3})` : ''}`);
  }
  if (r.unresolved.length > 0) {
    lines.push('', `unresolved sites (${r.unresolved.length}):`);
    for (const u of r.unresolved.slice(0, 50)) lines.push(`  ${u.file} ${u.address}: ${u.reason}`);
    if (r.unresolved.length > 50) lines.push(`  ... ${r.unresolved.length - 50} more (--format json lists all)`);
  }
  if (r.warnings.length > 0) {
    lines.push('', `warnings (${r.warnings.length}):`);
    for (const w of r.warnings.slice(0, 30)) lines.push(`  ${w.file}: ${w.message}`);
  }
  return lines.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  let image: string | undefined;
  let format = 'text';
  let seccomp: string | undefined;
  let allElf = false;
  let unresolved: UnresolvedMode = 'open';
  let cacheDir: string | false | undefined;
  let dockerSocket: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new AnalysisError(a, 'needs a value');
      return v;
    };
    try {
      if (a === '--help' || a === '-h') { process.stdout.write(USAGE); return 0; }
      else if (a === '--format') { format = value(); if (format !== 'text' && format !== 'json') throw new AnalysisError('--format', `must be text or json, not ${format}`); }
      else if (a === '--seccomp') seccomp = value();
      else if (a === '--all-elf') allElf = true;
      else if (a === '--fail-closed') unresolved = 'closed';
      else if (a === '--unresolved') { const v = value(); if (v !== 'open' && v !== 'closed') throw new AnalysisError('--unresolved', `must be open or closed, not ${v}`); unresolved = v; }
      else if (a === '--cache') cacheDir = value();
      else if (a === '--no-cache') cacheDir = false;
      else if (a === '--docker-socket') dockerSocket = value();
      else if (a.startsWith('-')) throw new AnalysisError(a, 'unknown option');
      else if (image === undefined) image = a;
      else throw new AnalysisError(a, 'only one IMAGE is analysed at a time');
    } catch (e) {
      process.stderr.write(`vigil analyze: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
  }
  if (!image) { process.stderr.write(USAGE); return 2; }
  const tty = process.stderr.isTTY === true;
  let last = 0;
  const onProgress = tty ? (m: string) => {
    const now = Date.now();
    if (now - last < 100) return;
    last = now;
    process.stderr.write(`\r\x1b[K${m.slice(0, (process.stderr.columns ?? 80) - 1)}`);
  } : undefined;
  let result: AnalysisResult;
  try {
    result = await analyzeImage(image, { allElf, unresolved, ...(cacheDir !== undefined ? { cacheDir } : {}), ...(dockerSocket ? { dockerSocket } : {}), ...(onProgress ? { onProgress } : {}) });
  } catch (e) {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`vigil analyze: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (tty) process.stderr.write('\r\x1b[K');
  if (seccomp) writeFileSync(seccomp, JSON.stringify(seccompProfile(result), null, 2) + '\n');
  process.stdout.write(format === 'json' ? JSON.stringify(result, null, 2) + '\n' : text(result));
  return 0;
}
