// analyzeImage: image -> root file system -> what can run -> the loader's view of each
// program -> per-file summaries (cached by content hash) -> the functions that can run ->
// the union of their system calls, plus what the runtime makes after the profile applies.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SYSCALL_NAMES_X86_64 } from '../events/syscall-table.js';
import { AnalysisError, type AnalysisWarning } from './errors.js';
import { loadImage, type ImageConfig, type LoadedImage } from './image.js';
import { ImageLoader, type Program } from './loader.js';
import { RootFs } from './rootfs.js';
import { summarize, type BinarySummary } from './syscalls.js';

/** Bumped whenever a summary's content or meaning changes, so old cache entries are not used. */
export const ANALYZER_VERSION = 7;

export type UnresolvedMode = 'open' | 'closed';

export interface AnalyzeOptions {
  /** Every ELF executable in the image, not only the entrypoint/cmd closure. */
  allElf?: boolean;
  /** 'open' (default): an unresolved site makes the list allow everything; 'closed': the list stands. */
  unresolved?: UnresolvedMode;
  /** Cache directory; `false` for none. Default $VIGIL_CACHE_DIR or ~/.cache/vigil/analysis. */
  cacheDir?: string | false;
  dockerSocket?: string;
  onProgress?: (message: string) => void;
}

export interface SyscallSource { file: string; reason: string }

export interface AnalysisResult {
  image: { ref: string; id: string };
  /** Sorted names of the allowed system calls. */
  syscalls: string[];
  numbers: number[];
  unresolved: { file: string; address: string; reason: string }[];
  /** For each system call: the files that bring it, or the runtime's reason. */
  sources: Record<string, SyscallSource[]>;
  /** The programs analysed and why. */
  programs: { path: string; reason: string; modules: { path: string; reason: string }[] }[];
  unresolvedMode: UnresolvedMode;
  /** True when the list must not be enforced: fail-open with unresolved sites. */
  allowAll: boolean;
  warnings: AnalysisWarning[];
  stats: { files: number; cachedFiles: number; instructions: number; imageCached: boolean };
}

/**
 * What runc does after it has applied the profile, before the entrypoint's first instruction
 * (Docker applies seccomp before dropping privileges unless no-new-privileges is set), and
 * what the kernel's vDSO falls back to. These are allowed whatever the image contains.
 */
export const RUNTIME_SYSCALLS: Readonly<Record<string, string>> = {
  execve: 'runc executes the entrypoint under the profile',
  execveat: 'runc may execute the entrypoint through a file descriptor',
  capget: 'runc drops capabilities after the profile applies',
  capset: 'runc drops capabilities after the profile applies',
  prctl: 'runc sets keep-caps and the bounding set after the profile applies',
  setgroups: 'runc sets the user\'s groups',
  setresuid: 'runc switches to the image\'s user',
  setresgid: 'runc switches to the image\'s group',
  setuid: 'runc (Go) switches user',
  setgid: 'runc (Go) switches group',
  chdir: 'runc enters the working directory',
  fchdir: 'runc enters the working directory',
  getcwd: 'runc checks the working directory',
  openat: 'runc opens the exec fifo and /proc/self/fd',
  close: 'runc closes inherited descriptors',
  close_range: 'runc closes inherited descriptors',
  fcntl: 'runc marks descriptors close-on-exec',
  getdents64: 'runc lists /proc/self/fd',
  newfstatat: 'runc checks files before exec',
  fstat: 'runc (Go) stats descriptors',
  readlinkat: 'runc resolves paths',
  read: 'runc reads its sync pipe',
  write: 'runc writes the exec fifo',
  futex: 'the Go runtime of runc',
  nanosleep: 'the Go runtime of runc',
  sched_yield: 'the Go runtime of runc',
  mmap: 'the Go runtime of runc',
  munmap: 'the Go runtime of runc',
  mprotect: 'the Go runtime of runc',
  madvise: 'the Go runtime of runc',
  brk: 'the loader of the entrypoint',
  rt_sigaction: 'the Go runtime of runc',
  rt_sigprocmask: 'the Go runtime of runc',
  rt_sigreturn: 'signal delivery to runc',
  sigaltstack: 'the Go runtime of runc',
  gettid: 'the Go runtime of runc',
  getpid: 'the Go runtime of runc',
  getppid: 'runc checks its parent',
  tgkill: 'the Go runtime of runc (signals between threads, all-threads set*id)',
  epoll_pwait: 'the Go runtime of runc',
  epoll_ctl: 'the Go runtime of runc',
  exit: 'the Go runtime of runc',
  exit_group: 'runc exits when exec fails',
  clock_gettime: 'vDSO fallback',
  gettimeofday: 'vDSO fallback',
  time: 'vDSO fallback',
  getcpu: 'vDSO fallback',
};

function cacheDirOf(o: AnalyzeOptions): string | undefined {
  if (o.cacheDir === false) return undefined;
  return o.cacheDir ?? process.env['VIGIL_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'vigil', 'analysis');
}

function readCache<T>(dir: string | undefined, key: string): T | undefined {
  if (!dir) return undefined;
  try {
    return JSON.parse(readFileSync(join(dir, key), 'utf8')) as T;
  } catch {
    return undefined; // missing or unreadable: computed again
  }
}

function writeCache(dir: string | undefined, key: string, value: unknown): void {
  if (!dir) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${key}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, join(dir, key));
  } catch {
    // A cache that cannot be written only costs time.
  }
}

/** Wrappers of other files resolved at their callers: the C library's syscall(). */
const IMPORT_WRAPPERS: ReadonlyMap<string, string> = new Map([['syscall', 'rdi']]);

/** The image id of a local Docker image without exporting it (for the result cache). */
function dockerImageId(ref: string, socketPath: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: `/images/${encodeURIComponent(ref)}/json`, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Id?: unknown }).Id;
          resolve(res.statusCode === 200 && typeof id === 'string' ? id : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

function looksLikePath(ref: string): boolean {
  return ref.startsWith('/') || ref.startsWith('.') || /\.(tar|tgz|tar\.gz)$/.test(ref);
}

/** Builds the image's root file system from its layers. */
export function buildRootFs(image: LoadedImage): RootFs {
  const fs = new RootFs();
  for (const l of image.layers) fs.applyLayer(l.tar, l.name);
  return fs;
}

/** Analyses an image already in memory. */
export function analyzeLoaded(image: LoadedImage, options: AnalyzeOptions = {}): AnalysisResult {
  const progress = options.onProgress ?? (() => {});
  const cacheDir = cacheDirOf(options);
  progress(`applying ${image.layers.length} layer(s)`);
  const fs = buildRootFs(image);
  const loader = new ImageLoader(fs, image.config);
  const starts = options.allElf
    ? [...fs.elfFiles()].map((f) => ({ path: f.path, reason: 'ELF file in the image (all-ELF mode)' }))
    : loader.entrypointClosure();
  const why = () => {
    const w = [...fs.warnings, ...loader.warnings].slice(0, 5).map((x) => `${x.file}: ${x.message}`);
    return w.length > 0 ? ` (${w.join('; ')})` : '';
  };
  if (starts.length === 0) {
    throw new AnalysisError(image.ref, (options.allElf ? 'the image has no ELF files' : 'nothing the entrypoint/cmd starts is an ELF file in the image (use --all-elf to analyse every ELF file)') + why());
  }
  // Interpreters' native modules are loaded by the interpreter at run time, by computed names.
  const extra: { path: string; reason: string }[] = [];
  for (const s of starts) {
    const m = /\/python(\d+\.\d+)$/.exec(s.path);
    if (m) {
      for (const f of fs.elfFiles()) {
        if (new RegExp(`^/usr(/local)?/lib/python${m[1]!.replace('.', '\\.')}/`).test(f.path)) extra.push({ path: f.path, reason: `native module of ${s.path}` });
      }
    }
  }
  const programs: Program[] = [];
  const seenProg = new Set<string>();
  for (const s of starts) {
    if (seenProg.has(s.path)) continue;
    seenProg.add(s.path);
    const p = loader.program(s.path, s.reason);
    if (p && p.modules[0]!.elf.x86_64) programs.push(p);
  }
  if (programs.length === 0) throw new AnalysisError(image.ref, `no x86-64 program could be read${why()}`);
  // A native module is a library whose code runs inside the interpreter's process.
  for (const e of extra) {
    const host = programs.find((p) => e.reason.endsWith(p.path));
    const lib = loader.program(e.path, e.reason);
    if (host && lib) for (const m of lib.modules) if (!host.modules.some((h) => h.path === m.path)) host.modules.push(m);
  }

  const summaries = new Map<string, BinarySummary>();
  let cached = 0, instructions = 0;
  const allModules = new Map<string, Program['modules'][number]>();
  for (const p of programs) for (const m of p.modules) allModules.set(m.path, m);
  let done = 0;
  for (const [path, m] of allModules) {
    done++;
    if (!m.elf.x86_64 || !m.elf.class64) continue;
    const hash = createHash('sha256').update(m.elf.data).digest('hex');
    const key = `v${ANALYZER_VERSION}-${hash}.json`;
    let s = readCache<BinarySummary>(cacheDir, key);
    if (s) cached++;
    else {
      progress(`disassembling ${path} (${done}/${allModules.size})`);
      try {
        s = summarize(m.elf, IMPORT_WRAPPERS);
        writeCache(cacheDir, key, s);
      } catch (e) {
        // A file that cannot be disassembled is one whole unresolved site: the list is then
        // incomplete, which the fail-open/closed setting decides about.
        s = { functions: [0], edges: [], roots: [0], entry: 0, exports: [], imports: [], syscalls: [], wrappers: [], unresolved: [{ fn: 0, address: '0x0', reason: `not analysed: ${(e as Error).message}` }], notCode: [], syscallSites: 0, instructions: 0 };
      }
    }
    instructions += s.instructions;
    summaries.set(path, s);
  }

  // The functions that can run, program by program: entry points, every function whose address
  // is taken (it may be called through a pointer from anywhere), init/fini, and each export
  // that a loaded file imports, taken from the first file in load order that defines it.
  const sources = new Map<number, Map<string, string>>();
  const unresolved: AnalysisResult['unresolved'] = [];
  const unresolvedSeen = new Set<string>();
  const notCodeWarned = new Set<string>();
  const warnings: AnalysisWarning[] = [];
  for (const p of programs) {
    const mods = p.modules.filter((m) => summaries.has(m.path));
    const reached = new Map<string, Set<number>>();
    const work: [string, number][] = [];
    const reach = (path: string, fn: number) => {
      if (fn < 0) return;
      let set = reached.get(path);
      if (!set) reached.set(path, (set = new Set()));
      if (!set.has(fn)) { set.add(fn); work.push([path, fn]); }
    };
    const providers = new Map<string, [string, number]>();
    for (const m of mods) {
      for (const [name, fn] of summaries.get(m.path)!.exports) if (!providers.has(name)) providers.set(name, [m.path, fn]);
    }
    for (const [i, m] of mods.entries()) {
      const s = summaries.get(m.path)!;
      if (i === 0 || m.reason.startsWith('PT_INTERP')) reach(m.path, s.entry);
      for (const r of s.roots) reach(m.path, r);
      for (const name of s.imports) {
        const pr = providers.get(name);
        if (pr) reach(pr[0], pr[1]);
      }
    }
    const adjacency = new Map<string, Map<number, number[]>>();
    for (const m of mods) {
      const adj = new Map<number, number[]>();
      for (const [a, b] of summaries.get(m.path)!.edges) {
        const l = adj.get(a);
        if (l) l.push(b); else adj.set(a, [b]);
      }
      adjacency.set(m.path, adj);
    }
    while (work.length > 0) {
      const [path, fn] = work.pop()!;
      for (const next of adjacency.get(path)!.get(fn) ?? []) reach(path, next);
    }
    for (const m of mods) {
      const s = summaries.get(m.path)!;
      const set = reached.get(m.path) ?? new Set();
      for (const [fn, nr] of s.syscalls) {
        if (!set.has(fn)) continue;
        let src = sources.get(nr);
        if (!src) sources.set(nr, (src = new Map()));
        if (!src.has(m.path)) src.set(m.path, m.reason);
      }
      if (s.notCode.length > 0 && set.size > 0 && !notCodeWarned.has(m.path)) {
        notCodeWarned.add(m.path);
        warnings.push({ file: m.path, message: `${s.notCode.length} system-call instruction(s) in bytes no function reaches, not counted (first at ${s.notCode[0]!.address})` });
      }
      for (const u of s.unresolved) {
        const key = `${m.path}@${u.address}:${u.reason}`;
        if (set.has(u.fn) && !unresolvedSeen.has(key)) {
          unresolvedSeen.add(key);
          unresolved.push({ file: m.path, address: u.address, reason: u.reason });
        }
      }
    }
  }
  const byName = new Map<string, SyscallSource[]>();
  for (const [nr, files] of sources) {
    const name = SYSCALL_NAMES_X86_64[nr] ?? `syscall_${nr}`;
    byName.set(name, [...files].map(([file, reason]) => ({ file, reason })));
  }
  for (const [name, reason] of Object.entries(RUNTIME_SYSCALLS)) {
    const l = byName.get(name) ?? [];
    l.push({ file: '(container runtime)', reason });
    byName.set(name, l);
  }
  const numberOf = new Map(Object.entries(SYSCALL_NAMES_X86_64).map(([n, name]) => [name, Number(n)]));
  const names = [...byName.keys()].filter((n) => numberOf.has(n)).sort();
  const mode = options.unresolved ?? 'open';
  return {
    image: { ref: image.ref, id: image.id },
    syscalls: names,
    numbers: names.map((n) => numberOf.get(n)!).sort((a, b) => a - b),
    unresolved,
    sources: Object.fromEntries(names.map((n) => [n, byName.get(n)!])),
    programs: programs.map((p) => ({ path: p.path, reason: p.reason, modules: p.modules.map((m) => ({ path: m.path, reason: m.reason })) })),
    unresolvedMode: mode,
    allowAll: mode === 'open' && unresolved.length > 0,
    warnings: [...fs.warnings, ...loader.warnings, ...warnings],
    stats: { files: allModules.size, cachedFiles: cached, instructions, imageCached: false },
  };
}

/**
 * The system-call allow-list of an image: a local Docker image name or id, a `docker save`
 * archive, or an OCI layout (directory or tar). A local image whose id was analysed before
 * with the same options is answered from the cache without exporting it.
 */
export async function analyzeImage(ref: string, options: AnalyzeOptions = {}): Promise<AnalysisResult> {
  const cacheDir = cacheDirOf(options);
  const socket = options.dockerSocket ?? '/var/run/docker.sock';
  const optKey = `${options.allElf ? 'all' : 'entry'}-${options.unresolved ?? 'open'}`;
  const id = looksLikePath(ref) ? undefined : await dockerImageId(ref, socket);
  const resultKey = id ? `v${ANALYZER_VERSION}-image-${id.replace(/^sha256:/, '')}-${optKey}.json` : undefined;
  if (resultKey) {
    const hit = readCache<AnalysisResult>(cacheDir, resultKey);
    if (hit) return { ...hit, image: { ref, id: hit.image.id }, stats: { ...hit.stats, imageCached: true } };
  }
  options.onProgress?.(`reading ${ref}`);
  const image = await loadImage(ref, { dockerSocket: socket, onProgress: (what, bytes) => options.onProgress?.(`${what}: ${(bytes / 1e6).toFixed(1)} MB`) });
  const result = analyzeLoaded(image, options);
  if (resultKey) writeCache(cacheDir, resultKey, result);
  return result;
}

export type { ImageConfig };
