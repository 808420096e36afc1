// Files other programs read while the agent rewrites them (counts, metrics): written
// beside, then renamed over, so a reader never sees half of one.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * mkdir -p, one level at a time. (Node 20's recursive mkdirSync never returns when the
 * kernel answers ENOENT under an existing parent, as /proc does.) Throws an Error whose
 * message names the directory that could not be made and why.
 */
export function ensureDirectory(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) ensureDirectory(parent);
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new Error(`cannot create directory ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
}

export function writeFileAtomic(path: string, text: string): void {
  ensureDirectory(dirname(path));
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
