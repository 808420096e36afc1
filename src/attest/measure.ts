// The agent's self-measurement: digests of what it runs, written as the first entry of
// each start and anchored at once. A verifier compares them with the known-good values
// of the release and the policy it expects.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** SHA-256 over the files under `root` (sorted by path; each as path, NUL, length, NUL, bytes), and how many. */
export function treeDigest(paths: readonly string[], filter: (path: string) => boolean = () => true): { sha256: string; files: number } {
  const files: Array<{ rel: string; path: string }> = [];
  const walk = (p: string, base: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) { for (const n of readdirSync(p)) walk(join(p, n), base); return; }
    if (st.isFile() && filter(p)) files.push({ rel: relative(base, p) || p, path: p });
  };
  for (const p of paths) walk(p, statSync(p).isDirectory() ? p : join(p, '..'));
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    const bytes = readFileSync(f.path);
    h.update(`${f.rel}\0${bytes.length}\0`).update(bytes);
  }
  return { sha256: h.digest('hex'), files: files.length };
}

/** The agent build: every compiled JavaScript file of vigil's src/ next to this one, and the BPF objects. */
export function buildDigest(bpfDir: string): { sha256: string; files: number; bpfObjects: { sha256: string; files: number } } {
  const src = fileURLToPath(new URL('..', import.meta.url));
  return { ...treeDigest([src], (p) => p.endsWith('.js')), bpfObjects: treeDigest([bpfDir], (p) => p.endsWith('.bpf.o')) };
}
