// What can run in an image, and what the dynamic loader would map for it: the entrypoint/cmd
// closure (`#!` interpreters, PATH lookup inside the image, the literal commands of shell
// scripts), and for each ELF executable its PT_INTERP, DT_NEEDED libraries found as ld.so
// finds them (RPATH, LD_LIBRARY_PATH, RUNPATH with $ORIGIN, the image's ld.so.conf, the
// default directories), the NSS modules nsswitch.conf names, and libraries whose names are
// string constants (dlopen candidates). Everything is looked up in the image's RootFs.
import { AnalysisError, type AnalysisWarning } from './errors.js';
import { dlopenNames, isElf, parseElf, type Elf } from './elf.js';
import type { RootFs } from './rootfs.js';
import type { ImageConfig } from './image.js';

export interface Module {
  path: string;
  elf: Elf;
  /** Why it is loaded: "PT_INTERP of /usr/sbin/nginx", "DT_NEEDED of …", "dlopen name in …". */
  reason: string;
}

export interface Program {
  /** The executable's path in the image. */
  path: string;
  reason: string;
  /** The executable first, then its loader and libraries in load order. */
  modules: Module[];
}

const DEFAULT_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
const SHELLS = /(^|\/)(sh|bash|dash|ash|busybox|zsh|ksh)$/;
const SHELL_WORDS = new Set(['if', 'then', 'else', 'elif', 'fi', 'for', 'while', 'until', 'do', 'done', 'case', 'esac', 'in', 'function', '{', '}', '!', '[[', ']]', 'exec', 'command', 'nohup', 'time', 'env']);
const BUILTINS = new Set(['cd', 'echo', 'printf', 'set', 'unset', 'export', 'read', 'test', '[', 'true', 'false', 'shift', 'exit', 'return', 'local', 'trap', 'wait', 'eval', '.', 'source', ':', 'ulimit', 'umask', 'alias', 'break', 'continue', 'getopts', 'hash', 'type', 'readonly', 'kill']);

export class ImageLoader {
  private elfCache = new Map<string, Elf | null>();
  private ldConfDirs: string[] | undefined;
  readonly warnings: AnalysisWarning[] = [];

  constructor(private readonly fs: RootFs, private readonly config: ImageConfig) {}

  private env(name: string): string | undefined {
    for (const e of this.config.env) if (e.startsWith(name + '=')) return e.slice(name.length + 1);
    return undefined;
  }

  /** The parsed ELF at a path (links followed), null when it is not one or cannot be read. */
  elfAt(path: string): { path: string; elf: Elf } | undefined {
    let f;
    try {
      f = this.fs.file(path);
    } catch (e) {
      this.warnings.push({ file: path, message: (e as Error).message });
      return undefined;
    }
    if (!f || !isElf(f.data)) return undefined;
    let elf = this.elfCache.get(f.path);
    if (elf === undefined) {
      try {
        elf = parseElf(f.data, f.path);
      } catch (e) {
        this.warnings.push({ file: f.path, message: e instanceof AnalysisError ? e.message : String(e) });
        elf = null;
      }
      this.elfCache.set(f.path, elf);
    }
    return elf ? { path: f.path, elf } : undefined;
  }

  /** PATH lookup inside the image, as execvp does. */
  which(cmd: string): string | undefined {
    if (cmd.includes('/')) return this.isExecutable(this.absolute(cmd)) ? this.absolute(cmd) : undefined;
    const path = this.env('PATH') ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
    for (const dir of path.split(':')) {
      const p = `${dir || '.'}/${cmd}`;
      if (this.isExecutable(this.absolute(p))) return this.absolute(p);
    }
    return undefined;
  }

  private absolute(p: string): string {
    return p.startsWith('/') ? p : `${this.config.workingDir || '/'}/${p}`.replace(/\/+/g, '/');
  }

  private isExecutable(p: string): boolean {
    try {
      const r = this.fs.resolve(p);
      return r.node?.kind === 'file' && (r.node.mode & 0o111) !== 0;
    } catch (e) {
      // A link loop: said once, and the name is not executable.
      if (!this.warnings.some((w) => w.message === (e as Error).message)) this.warnings.push({ file: p, message: (e as Error).message });
      return false;
    }
  }

  private ldSoConf(): string[] {
    if (this.ldConfDirs) return this.ldConfDirs;
    const dirs: string[] = [];
    const seen = new Set<string>();
    const read = (file: string, depth: number) => {
      if (depth > 8 || seen.has(file)) return;
      seen.add(file);
      const f = this.fs.file(file);
      if (!f) return;
      for (const raw of f.data.toString('utf8').split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        if (!line) continue;
        const m = /^include\s+(.+)$/.exec(line);
        if (m) {
          for (const pattern of m[1]!.split(/\s+/)) {
            const abs = pattern.startsWith('/') ? pattern : `/etc/${pattern}`;
            const slash = abs.lastIndexOf('/');
            const dir = abs.slice(0, slash), glob = abs.slice(slash + 1);
            const re = new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
            for (const name of this.fs.list(dir)) if (re.test(name)) read(`${dir}/${name}`, depth + 1);
          }
        } else dirs.push(line);
      }
    };
    read('/etc/ld.so.conf', 0);
    return (this.ldConfDirs = dirs);
  }

  /** Finds a DT_NEEDED name for `needer` as ld.so would. */
  private findLibrary(name: string, needer: Module, chain: Module[]): string | undefined {
    const origin = needer.path.slice(0, needer.path.lastIndexOf('/')) || '/';
    const expand = (d: string) => d.replace(/\$(\{ORIGIN\}|ORIGIN)/g, origin).replace(/\$(\{LIB\}|LIB)/g, 'lib/x86_64-linux-gnu').replace(/\$(\{PLATFORM\}|PLATFORM)/g, 'x86_64');
    if (name.includes('/')) return this.elfAt(this.absolute(name))?.path;
    const dirs: string[] = [];
    // DT_RPATH of the needer and of those that loaded it, unless the needer has DT_RUNPATH.
    if (needer.elf.runpath.length === 0) for (const m of [needer, ...chain]) dirs.push(...m.elf.rpath.map(expand));
    dirs.push(...(this.env('LD_LIBRARY_PATH') ?? '').split(/[:;]/).filter(Boolean));
    dirs.push(...needer.elf.runpath.map(expand));
    dirs.push(...this.ldSoConf(), ...DEFAULT_DIRS);
    for (const d of dirs) {
      const found = this.elfAt(`${d}/${name}`);
      if (found && found.elf.x86_64 && found.elf.class64) return found.path;
    }
    return undefined;
  }

  /** The modules one executable maps: itself, its interpreter, libraries, NSS modules, dlopen names. */
  program(path: string, reason: string): Program | undefined {
    const exe = this.elfAt(path);
    if (!exe) return undefined;
    const modules: Module[] = [{ path: exe.path, elf: exe.elf, reason }];
    const have = new Set([exe.path]);
    const add = (p: string | undefined, why: string): void => {
      if (!p || have.has(p)) return;
      const e = this.elfAt(p);
      if (!e) return;
      have.add(e.path);
      modules.push({ path: e.path, elf: e.elf, reason: why });
    };
    if (exe.elf.interp) {
      const interp = this.elfAt(exe.elf.interp);
      if (!interp) this.warnings.push({ file: exe.path, message: `its interpreter ${exe.elf.interp} is not in the image` });
      add(interp?.path, `PT_INTERP of ${exe.path}`);
    }
    for (let i = 0; i < modules.length; i++) {
      const m = modules[i]!;
      for (const n of m.elf.needed) {
        const found = this.findLibrary(n, m, modules.slice(0, i));
        if (!found) this.warnings.push({ file: m.path, message: `needs ${n}, which is not found in the image` });
        add(found, `DT_NEEDED of ${m.path}`);
      }
      // Library names as string constants: what the file may dlopen.
      for (const n of dlopenNames(m.elf)) add(this.findLibrary(n, m, modules.slice(0, i)), `dlopen name in ${m.path}`);
      if (m.elf.soname?.startsWith('libc.so')) {
        for (const svc of this.nssServices()) add(this.findLibrary(`libnss_${svc}.so.2`, m, []), `NSS module named in /etc/nsswitch.conf`);
      }
    }
    return { path: exe.path, reason, modules };
  }

  private nssServices(): string[] {
    const f = this.fs.file('/etc/nsswitch.conf');
    if (!f) return [];
    const out = new Set<string>();
    for (const raw of f.data.toString('utf8').split('\n')) {
      const line = raw.replace(/#.*/, '');
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      for (const w of line.slice(colon + 1).replace(/\[[^\]]*\]/g, ' ').split(/\s+/)) if (/^[a-z0-9_]+$/.test(w)) out.add(w);
    }
    return [...out];
  }

  /**
   * The executables the image's entrypoint/cmd can start: the command itself, the `#!`
   * interpreter of a script, and the literal commands a shell script or `sh -c` string runs.
   */
  entrypointClosure(): { path: string; reason: string }[] {
    const argv = [...this.config.entrypoint, ...this.config.cmd];
    const out: { path: string; reason: string }[] = [];
    const seen = new Set<string>();
    const visit = (cmd: string[], reason: string, depth: number): void => {
      if (depth > 8 || cmd.length === 0) return;
      const exe = this.which(cmd[0]!);
      if (!exe) {
        this.warnings.push({ file: cmd[0]!, message: `${reason}: not found on PATH in the image` });
        return;
      }
      let resolved: string;
      try {
        resolved = this.fs.resolve(exe).path;
      } catch (e) {
        this.warnings.push({ file: exe, message: (e as Error).message });
        return;
      }
      const key = `${resolved}\0${cmd.slice(1).join(' ')}`;
      if (seen.has(key)) return;
      seen.add(key);
      const f = this.fs.file(resolved);
      if (!f) return;
      if (isElf(f.data)) {
        if (!out.some((o) => o.path === resolved)) out.push({ path: resolved, reason });
        // `sh -c 'string'`: the string's commands run too.
        if (SHELLS.test(exe) || SHELLS.test(resolved)) {
          const c = cmd.indexOf('-c');
          if (c > 0 && cmd[c + 1] !== undefined) for (const w of scriptCommands(cmd[c + 1]!)) visit(w, `command in the ${exe} -c string`, depth + 1);
          else if (cmd[1] !== undefined && !cmd[1].startsWith('-')) this.visitScript(cmd[1], visit, depth);
        }
        return;
      }
      if (f.data[0] === 0x23 && f.data[1] === 0x21) {
        const line = f.data.toString('utf8', 2, Math.min(f.data.length, 256)).split('\n')[0]!.trim();
        const parts = line.split(/\s+/).filter(Boolean);
        if (parts.length > 0) visit([...parts, exe, ...cmd.slice(1)], `#! interpreter of ${exe}`, depth + 1);
        for (const w of scriptCommands(f.data.toString('utf8'))) visit(w, `command in the script ${exe}`, depth + 1);
      }
    };
    visit(argv, 'entrypoint/cmd', 0);
    return out;
  }

  private visitScript(path: string, visit: (cmd: string[], reason: string, depth: number) => void, depth: number): void {
    const f = this.fs.file(this.absolute(path));
    if (!f || isElf(f.data)) return;
    for (const w of scriptCommands(f.data.toString('utf8'))) visit(w, `command in the script ${path}`, depth + 1);
  }
}

/** The literal commands (argv of words without expansions) of a shell script. */
export function scriptCommands(text: string): string[][] {
  const out: string[][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.startsWith('#!') ? '' : raw.replace(/(^|\s)#.*$/, '');
    for (const part of line.split(/&&|\|\||[;|&()`]|\$\(/)) {
      const words = part.trim().split(/\s+/).filter(Boolean);
      while (words.length > 0 && (SHELL_WORDS.has(words[0]!) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!))) words.shift();
      const w0 = words[0];
      if (!w0 || BUILTINS.has(w0) || !/^[A-Za-z0-9_./+-]+$/.test(w0) || w0.endsWith(')')) continue;
      out.push(words.map((w) => w.replace(/^["']|["']$/g, '')));
    }
  }
  return out;
}
