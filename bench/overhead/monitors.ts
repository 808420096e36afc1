// The monitors the overhead benchmark compares: none, the vigil agent as a user runs it,
// the agent logging every file event, and Debian's auditd with rules of like coverage.
// Each one is started, read between rows (CPU used, events written, records lost) and
// stopped; what is read belongs to the monitor's own processes and files.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VIGIL_BIN } from '../../test/helpers/agent-process.js';

/** The modes a run measures unless told otherwise. */
export const MODES = ['baseline', 'vigil', 'vigil-all', 'auditd'] as const;
/** vigil-ref: the agent of another build (--ref=DIR), for a before/after in one run. */
export const ALL_MODES = [...MODES, 'vigil-ref'] as const;
export type ModeName = (typeof ALL_MODES)[number];

export const MODE_DESCRIPTIONS: Record<ModeName, string> = {
  baseline: 'no monitor',
  vigil: 'vigil agent, default configuration and policy, image allow-lists checked in the kernel (--allowlists), every event to a JSON-lines file',
  'vigil-all': 'vigil agent with --all-paths and --allowlists: a file event for every path, like the paper\'s NORMAL lines',
  'vigil-ref': 'the vigil agent of the build given by --ref (its dist/ and bpf/.output), default configuration: the same as vigil, before a change',
  auditd: 'Debian auditd: process creation and exec, network, privilege and escape calls and every file open or change (audit rules cannot select containers: they apply to every process)',
};

/** What a monitor has done so far: read before and after each row. */
export interface MonitorReading {
  cpuTicks: number;
  events: number;
  lost: number;
}

export interface Monitor {
  readonly mode: ModeName;
  /** Waits until the monitor has written what it was sent, then reads its counters. */
  read(): Promise<MonitorReading>;
  /** The process holding the monitor's BPF programs, if it has any (the agent). */
  readonly pid?: number | undefined;
  /** Peak resident memory of the monitor's processes, in bytes (0 for none). */
  peakRssBytes(): number;
  stop(): Promise<void>;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
export const ticksToSeconds = (ticks: number): number => ticks / CLK_TCK;

function cpuTicks(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0; // gone: nothing more to count
  }
}

function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`bench overhead: ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until a file has stopped growing for quietMs (bounded), so a reading covers what the row produced. */
async function settle(path: string, quietMs = 400, boundMs = 20_000): Promise<void> {
  const size = () => (existsSync(path) ? statSync(path).size : 0);
  const deadline = Date.now() + boundMs;
  let last = size();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = size();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

/** Counts the lines of a growing file incrementally, and hands each line that matches to onMatch. */
class LineCounter {
  private offset = 0;
  private tail = '';
  lines = 0;
  constructor(private readonly path: string, private readonly match: string, private readonly onMatch: (line: string) => void) {}

  catchUp(): void {
    if (!existsSync(this.path)) return;
    const fd = openSync(this.path, 'r');
    try {
      const chunk = Buffer.alloc(1 << 20);
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.tail + chunk.subarray(0, n).toString('utf8');
        const parts = text.split('\n');
        this.tail = parts.pop() ?? '';
        this.lines += parts.length;
        for (const line of parts) if (line.includes(this.match)) this.onMatch(line);
      }
    } finally {
      closeSync(fd);
    }
  }
}

class NoMonitor implements Monitor {
  readonly mode = 'baseline' as const;
  async read(): Promise<MonitorReading> {
    return { cpuTicks: 0, events: 0, lost: 0 };
  }
  peakRssBytes(): number {
    return 0;
  }
  async stop(): Promise<void> {}
}

class AgentMonitor implements Monitor {
  private lost = 0;
  private readonly counter: LineCounter;
  private peak = 0;
  private constructor(readonly mode: ModeName, private readonly child: ChildProcess, private readonly dir: string, private readonly logPath: string) {
    this.counter = new LineCounter(logPath, '"kind":"lost"', (line) => {
      const e = JSON.parse(line) as { args?: { lost?: number } };
      this.lost += Number(e.args?.lost ?? 0);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(mode: ModeName, extraArgs: string[], bin: string = VIGIL_BIN): Promise<AgentMonitor> {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-overhead-'));
    const logPath = join(dir, 'events.jsonl');
    const child = spawn(process.execPath, [bin, 'agent', '--output', `jsonl:${logPath}`, ...extraArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { err = (err + d).slice(-20_000); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vigil agent not ready after 60 s:\n${err}`)), 60_000);
      const onData = () => {
        if (err.includes('ready:')) {
          clearTimeout(timer);
          child.stderr!.off('data', onData);
          resolve();
        }
      };
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`vigil agent exited with ${code} before it was ready:\n${err}`));
      });
    });
    return new AgentMonitor(mode, child, dir, logPath);
  }

  async read(): Promise<MonitorReading> {
    await settle(this.logPath);
    this.counter.catchUp();
    this.peak = Math.max(this.peak, peakRss(this.child.pid!));
    return { cpuTicks: cpuTicks(this.child.pid!), events: this.counter.lines, lost: this.lost };
  }

  peakRssBytes(): number {
    return Math.max(this.peak, peakRss(this.child.pid!));
  }

  async stop(): Promise<void> {
    this.peak = this.peakRssBytes();
    const exited = new Promise<void>((r) => (this.child.exitCode !== null ? r() : this.child.once('exit', () => r())));
    this.child.kill('SIGTERM');
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Calls of like coverage to vigil's default capture, as audit rules can say them. */
const AUDIT_RULES = [
  '-D',
  '-b 8192',
  '-a always,exit -F arch=b64 -S execve,execveat,clone,clone3,fork,vfork -k vigil-process',
  '-a always,exit -F arch=b64 -S connect,bind,listen,accept,accept4 -k vigil-net',
  '-a always,exit -F arch=b64 -S mount,umount2,unshare,setns,ptrace,init_module,finit_module,delete_module,bpf,chroot,pivot_root,kexec_load,open_by_handle_at,keyctl,add_key,request_key,perf_event_open -k vigil-escape',
  '-a always,exit -F arch=b64 -S setuid,setgid,setreuid,setregid,setresuid,setresgid,capset -k vigil-priv',
  // Audit path rules name host inodes, not paths in a container's root: every open and
  // change is recorded to cover the container paths vigil watches.
  '-a always,exit -F arch=b64 -S open,openat,openat2,creat,unlink,unlinkat,rename,renameat,renameat2,chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,link,linkat,symlink,symlinkat,truncate -k vigil-file',
];

/** Debian's auditd.conf, but with a log of the benchmark's own that is never rotated away while it is read. */
function auditdConf(logFile: string): string {
  const debian = existsSync('/etc/audit/auditd.conf') ? readFileSync('/etc/audit/auditd.conf', 'utf8') : '';
  const own: Record<string, string> = { log_file: logFile, max_log_file: '4096', max_log_file_action: 'IGNORE', num_logs: '0', space_left_action: 'IGNORE', admin_space_left_action: 'IGNORE', disk_full_action: 'IGNORE', disk_error_action: 'IGNORE' };
  const kept = debian.split('\n').filter((l) => !/^\s*#/.test(l) && l.includes('=') && !(l.split('=')[0]!.trim() in own));
  return [...kept, ...Object.entries(own).map(([k, v]) => `${k} = ${v}`)].join('\n') + '\n';
}

function auditStatus(): Record<string, number> {
  const out = execFileSync('auditctl', ['-s'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
}

class AuditdMonitor implements Monitor {
  readonly mode = 'auditd' as const;
  private readonly counter: LineCounter;
  private readonly lostAtStart: number;
  private peak = 0;
  private constructor(private readonly child: ChildProcess, private readonly kauditd: number, private readonly dir: string) {
    this.lostAtStart = auditStatus()['lost'] ?? 0;
    this.counter = new LineCounter(join(dir, 'audit.log'), 'type=SYSCALL', () => {});
  }

  static available(): string | undefined {
    try {
      execFileSync('auditctl', ['-s'], { stdio: 'ignore' });
    } catch {
      return 'auditctl is missing or the kernel has no audit support (scripts/bootstrap.sh installs auditd)';
    }
    const pid = auditStatus()['pid'] ?? 0;
    if (pid !== 0) return `an audit daemon (pid ${pid}) is already running: the benchmark will not replace its rules`;
    return undefined;
  }

  static async start(): Promise<AuditdMonitor> {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-audit-'));
    writeFileSync(join(dir, 'auditd.conf'), auditdConf(join(dir, 'audit.log')), { mode: 0o640 });
    const child = spawn('auditd', ['-n', '-c', dir], { stdio: 'ignore' });
    await waitFor('auditd did not register with the kernel', () => auditStatus()['pid'] === child.pid, 20_000);
    const rules = join(dir, 'vigil.rules');
    writeFileSync(rules, AUDIT_RULES.join('\n') + '\n');
    execFileSync('auditctl', ['-R', rules], { stdio: 'ignore' });
    execFileSync('auditctl', ['-e', '1'], { stdio: 'ignore' });
    const kauditd = Number(execFileSync('pgrep', ['-x', 'kauditd'], { encoding: 'utf8' }).trim().split('\n')[0] ?? 0);
    return new AuditdMonitor(child, kauditd, dir);
  }

  async read(): Promise<MonitorReading> {
    await settle(join(this.dir, 'audit.log'));
    this.counter.catchUp();
    this.peak = Math.max(this.peak, peakRss(this.child.pid!));
    const lost = (auditStatus()['lost'] ?? 0) - this.lostAtStart;
    // The kernel's audit thread does part of the work the daemon would otherwise do: count both.
    return { cpuTicks: cpuTicks(this.child.pid!) + (this.kauditd ? cpuTicks(this.kauditd) : 0), events: this.counter.lines, lost };
  }

  peakRssBytes(): number {
    return Math.max(this.peak, peakRss(this.child.pid!));
  }

  async stop(): Promise<void> {
    this.peak = this.peakRssBytes();
    execFileSync('auditctl', ['-D'], { stdio: 'ignore' });
    execFileSync('auditctl', ['-e', '0'], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => (this.child.exitCode !== null ? r() : this.child.once('exit', () => r())));
    this.child.kill('SIGTERM');
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The agent's entry point in a build directory given by --ref (a checkout with dist/ and bpf/.output built). */
export const refAgentBin = (refDir: string): string => join(refDir, 'dist', 'src', 'cli', 'main.js');

/** Why a mode cannot run on this machine, or undefined when it can. */
export function modeUnavailable(mode: ModeName, refDir?: string): string | undefined {
  if (mode === 'vigil-ref') {
    if (!refDir) return 'no --ref=DIR given (a vigil checkout with dist/ and bpf/.output built)';
    if (!existsSync(refAgentBin(refDir))) return `${refAgentBin(refDir)} is missing: build that checkout (npx tsc -p tsconfig.json) first`;
    if (!existsSync(join(refDir, 'bpf', '.output', 'process.bpf.o'))) return `${join(refDir, 'bpf', '.output')} has no BPF objects: make -C bpf there first`;
    return undefined;
  }
  return mode === 'auditd' ? AuditdMonitor.available() : undefined;
}

export async function startMonitor(mode: ModeName, refDir?: string): Promise<Monitor> {
  switch (mode) {
    case 'vigil-ref':
      return AgentMonitor.start(mode, [], refAgentBin(refDir ?? '.'));
    case 'baseline':
      return new NoMonitor();
    case 'vigil':
      return AgentMonitor.start(mode, ['--allowlists']);
    case 'vigil-all':
      return AgentMonitor.start(mode, ['--all-paths', '--allowlists']);
    case 'auditd':
      return AuditdMonitor.start();
  }
}
