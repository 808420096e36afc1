// An image's root file system, assembled in memory from its layers in order (whiteouts and
// opaque directories applied) without writing anything to disk: no path in a layer can land
// outside it, and no link is ever followed on the host. Only the bytes the analysis reads are
// kept (ELF files, `#!` scripts and /etc); the rest is known by name and size only.
import { AnalysisError, type AnalysisWarning } from './errors.js';
import { readTar, type TarEntry } from './tar.js';

export type FsNode =
  | { kind: 'file'; size: number; mode: number; data: Buffer | undefined; layer: string }
  | { kind: 'dir'; mode: number }
  | { kind: 'symlink'; target: string }
  | { kind: 'special'; what: string };

export interface RootFsLimits {
  /** A file larger than this is skipped with a warning (not kept, not analysed). */
  maxFileBytes: number;
  /** Symbolic links followed while resolving one path before it counts as a loop. */
  maxLinks: number;
}

export const DEFAULT_LIMITS: RootFsLimits = { maxFileBytes: 512 * 1024 * 1024, maxLinks: 40 };

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little-endian

/** True for the bytes the analysis needs to keep. */
function worthKeeping(path: string, data: Buffer): boolean {
  if (data.length >= 4 && data.readUInt32LE(0) === ELF_MAGIC) return true;
  if (data.length >= 2 && data[0] === 0x23 && data[1] === 0x21) return true; // #!
  return path.startsWith('/etc/') && data.length <= 1024 * 1024;
}

/**
 * A layer path as an absolute image path ("/usr/bin/x"), or undefined when it climbs out of
 * the root with `..` (refused: Docker itself refuses such layers).
 */
export function normalizeEntryName(name: string): string | undefined {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') return undefined;
    parts.push(p);
  }
  return '/' + parts.join('/');
}

export class RootFs {
  readonly nodes = new Map<string, FsNode>();
  readonly warnings: AnalysisWarning[] = [];
  constructor(readonly limits: RootFsLimits = DEFAULT_LIMITS) {}

  private warn(file: string, message: string): void {
    if (this.warnings.length < 1000) this.warnings.push({ file, message });
  }

  private removeTree(path: string, keep?: Set<string>): void {
    const prefix = path === '/' ? '/' : path + '/';
    for (const k of [...this.nodes.keys()]) {
      if ((k === path || k.startsWith(prefix)) && !keep?.has(k)) this.nodes.delete(k);
    }
  }

  /** Applies one layer (an uncompressed tar) on top of what is there. */
  applyLayer(tar: Buffer, layerName: string): void {
    this.dirs = undefined;
    const added = new Set<string>();
    const opaque: string[] = [];
    for (const e of readTar(tar, layerName)) this.applyEntry(e, layerName, added, opaque);
    // An opaque directory hides what lower layers had in it, not what this layer put there.
    for (const dir of opaque) this.removeTree(dir, added);
  }

  private applyEntry(e: TarEntry, layer: string, added: Set<string>, opaque: string[]): void {
    const path = normalizeEntryName(e.name);
    const where = `${layer}:${e.name}`;
    if (path === undefined) {
      this.warn(where, 'path climbs out of the image root with ../: entry skipped');
      return;
    }
    const slash = path.lastIndexOf('/');
    const dir = slash <= 0 ? '/' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    if (base === '.wh..wh..opq') {
      opaque.push(dir);
      return;
    }
    if (base.startsWith('.wh.')) {
      this.removeTree((dir === '/' ? '' : dir) + '/' + base.slice(4));
      return;
    }
    // A later entry replaces an earlier one of the same name; a non-directory replacing a
    // directory takes its contents with it.
    const before = this.nodes.get(path);
    if (e.type !== 'dir' && before?.kind === 'dir') this.removeTree(path);
    added.add(path);
    switch (e.type) {
      case 'dir':
        if (before?.kind !== 'dir') this.removeTree(path);
        this.nodes.set(path, { kind: 'dir', mode: e.mode });
        return;
      case 'symlink':
        if (e.linkname === '') {
          this.warn(where, 'symbolic link with an empty target: skipped');
          this.nodes.delete(path);
          return;
        }
        this.nodes.set(path, { kind: 'symlink', target: e.linkname });
        return;
      case 'hardlink': {
        const target = normalizeEntryName(e.linkname);
        const node = target === undefined ? undefined : this.nodes.get(target);
        if (target === undefined || !node || node.kind !== 'file') {
          this.warn(where, `hard link to ${e.linkname}, which is not a file earlier in the image: skipped`);
          return;
        }
        this.nodes.set(path, node);
        return;
      }
      case 'file':
        if (e.size > this.limits.maxFileBytes) {
          this.warn(where, `file of ${e.size} bytes is larger than the limit of ${this.limits.maxFileBytes}: not analysed`);
          this.nodes.set(path, { kind: 'file', size: e.size, mode: e.mode, data: undefined, layer });
          return;
        }
        this.nodes.set(path, { kind: 'file', size: e.size, mode: e.mode, data: worthKeeping(path, e.data) ? e.data : undefined, layer });
        return;
      case 'sparse':
        this.warn(where, `sparse file (${e.size} bytes): not analysed`);
        this.nodes.set(path, { kind: 'file', size: e.size, mode: e.mode, data: undefined, layer });
        return;
      default:
        // Devices and fifos are never opened: they are names only.
        this.nodes.set(path, { kind: 'special', what: e.type });
    }
  }

  /**
   * Resolves `path` inside the image as the kernel would inside the container: absolute
   * link targets start at the image root, `..` stops at the root, and more than maxLinks
   * links is a loop. Returns the final path and its node (undefined when nothing is there).
   */
  resolve(path: string, followLast = true): { path: string; node: FsNode | undefined } {
    let links = 0;
    const todo = path.split('/').filter((p) => p !== '' && p !== '.');
    const done: string[] = [];
    todo.reverse();
    while (todo.length > 0) {
      const part = todo.pop()!;
      if (part === '..') {
        done.pop();
        continue;
      }
      const here = '/' + [...done, part].join('/');
      const node = this.nodes.get(here);
      if (node?.kind === 'symlink' && (todo.length > 0 || followLast)) {
        if (++links > this.limits.maxLinks) throw new AnalysisError(path, `too many levels of symbolic links (a loop through ${here} -> ${node.target})`);
        const target = node.target.split('/').filter((p) => p !== '' && p !== '.');
        if (node.target.startsWith('/')) done.length = 0;
        for (let i = target.length - 1; i >= 0; i--) todo.push(target[i]!);
        continue;
      }
      done.push(part);
    }
    const final = '/' + done.join('/');
    const node = this.nodes.get(final) ?? (this.hasChildren(final) ? { kind: 'dir' as const, mode: 0o755 } : undefined);
    return { path: final, node };
  }

  /** Every directory that has an entry under it; rebuilt after a layer changes the tree. */
  private dirs: Set<string> | undefined;

  private hasChildren(dir: string): boolean {
    if (!this.dirs) {
      this.dirs = new Set(['/']);
      for (const k of this.nodes.keys()) {
        for (let i = k.lastIndexOf('/'); i > 0; i = k.lastIndexOf('/', i - 1)) {
          const d = k.slice(0, i);
          if (this.dirs.has(d)) break;
          this.dirs.add(d);
        }
      }
    }
    return this.dirs.has(dir);
  }

  /** The bytes of a regular file at `path` (links followed), or undefined. */
  file(path: string): { path: string; data: Buffer } | undefined {
    const r = this.resolve(path);
    return r.node?.kind === 'file' && r.node.data ? { path: r.path, data: r.node.data } : undefined;
  }

  /** Every regular file whose bytes were kept and start with the ELF magic. */
  *elfFiles(): Generator<{ path: string; data: Buffer }> {
    for (const [path, n] of this.nodes) {
      if (n.kind === 'file' && n.data && n.data.length >= 4 && n.data.readUInt32LE(0) === ELF_MAGIC) yield { path, data: n.data };
    }
  }

  /** Names of the entries directly in `dir` (links followed for `dir` itself). */
  list(dir: string): string[] {
    const d = this.resolve(dir).path;
    const prefix = d === '/' ? '/' : d + '/';
    const out = new Set<string>();
    for (const k of this.nodes.keys()) {
      if (k.startsWith(prefix)) {
        const rest = k.slice(prefix.length);
        if (rest !== '') out.add(rest.split('/')[0]!);
      }
    }
    return [...out].sort();
  }
}
