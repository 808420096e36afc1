// What the kernel sends to user space: the syscalls captured, the watched paths and
// ports, capability reporting, syscall counting and raw streaming. Defaults send what
// the default rules need and nothing more; every setting becomes map contents.
import { encodeRule, ruleSlots, SYSCALL_SPECS } from '../events/index.js';
import type { BpfSensor } from '../sensor/index.js';
import type { CaptureNeeds } from '../policy/index.js';

export interface CaptureConfig {
  syscalls: string[];
  paths: { watch: string[]; exclude: string[]; suffixes: string[]; all: boolean };
  /** Watched ports; empty: every port. */
  ports: number[];
  capabilities: 'first' | 'every';
  countSyscalls: boolean;
  /** Containers (name or id prefix) whose every syscall is streamed raw. */
  stream: string[];
  /** Exec events carry the environment. Off by default: environments hold secrets. */
  environment: boolean;
}

export class CaptureError extends Error {
  readonly code = 'VIGIL_BAD_CAPTURE';
}

export const DEFAULT_CAPTURE: CaptureConfig = {
  syscalls: Object.entries(SYSCALL_SPECS).filter(([, s]) => s.defaultOn).map(([n]) => n),
  paths: {
    // Reads and writes here are what the default rules judge: credentials, binaries,
    // boot and kernel knobs, the container runtime's socket, persistence points.
    // Not /lib/ or /usr/lib/: every program start opens its libraries there.
    watch: [
      '/etc/', '/root/', '/home/', '/bin/', '/sbin/', '/usr/bin/', '/usr/sbin/', '/usr/local/bin/', '/usr/local/sbin/',
      '/boot/', '/dev/', '/proc/sys/', '/proc/sysrq-trigger', '/sys/', '/var/run/docker.sock',
      '/run/docker.sock', '/var/run/containerd/', '/run/containerd/', '/var/spool/cron/', '/var/log/',
      '/var/run/secrets/', '/run/secrets/',
    ],
    // Opened by nearly every program start: noise, not signal. Entries ending in '/' are
    // directory trees; the others are exact paths.
    exclude: ['/etc/ld.so.cache', '/etc/ld.so.preload.d/', '/etc/localtime', '/dev/null', '/dev/tty', '/dev/urandom', '/dev/random', '/dev/pts/'],
    // Files the default rules judge wherever they are: keys and credentials, start-up files and
    // histories in any home directory, another process's environment or memory (/proc/PID/environ,
    // /proc/PID/mem), a cgroup v1 release_agent where the hierarchy is mounted.
    suffixes: ['/.ssh/authorized_keys', '/.ssh/authorized_keys2', '/.ssh/id_rsa', '/.ssh/id_ed25519', '/.ssh/id_ecdsa', '/.ssh/id_dsa',
      '/.aws/credentials', '/.kube/config', '/.docker/config.json', '/.git-credentials', '/.netrc', '/.pgpass', '.pem', '.key',
      '/.bashrc', '/.bash_profile', '/.bash_login', '/.profile', '/.zshrc', '/.zprofile',
      '/.bash_history', '/.zsh_history', '/.ash_history', '/.sh_history', '/.python_history',
      '/environ', '/mem', '/release_agent'],
    all: false,
  },
  ports: [],
  capabilities: 'first',
  countSyscalls: true,
  stream: [],
  environment: false,
};

const CAPTURE_KEYS = ['syscalls', 'paths', 'ports', 'capabilities', 'countSyscalls', 'stream', 'environment'] as const;
const PATH_KEYS = ['watch', 'exclude', 'suffixes', 'all'] as const;

function stringList(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw new CaptureError(`${where}: must be a list of non-empty strings`);
  return v as string[];
}

/** Validates the `capture` mapping of a config file over the defaults. */
export function parseCapture(doc: unknown, where: string): CaptureConfig {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CaptureError(`${where}: must be a mapping with keys ${CAPTURE_KEYS.join(', ')}`);
  const out: CaptureConfig = structuredClone(DEFAULT_CAPTURE);
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'syscalls': {
        // 'default' stands for the default set, so one call can be added without listing all.
        const names = [...new Set(stringList(value, at).flatMap((n) => (n === 'default' ? DEFAULT_CAPTURE.syscalls : [n])))];
        const unknown = names.filter((n) => !Object.prototype.hasOwnProperty.call(SYSCALL_SPECS, n));
        if (unknown.length) throw new CaptureError(`${at}: vigil cannot capture ${unknown.map((n) => `'${n}'`).join(', ')} (known: ${Object.keys(SYSCALL_SPECS).join(', ')}); every syscall is counted regardless`);
        out.syscalls = names;
        break;
      }
      case 'paths': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CaptureError(`${at}: must be a mapping with keys ${PATH_KEYS.join(', ')}`);
        for (const [pk, pv] of Object.entries(value as Record<string, unknown>)) {
          const pat = `${at}.${pk}`;
          if (pk === 'all') {
            if (typeof pv !== 'boolean') throw new CaptureError(`${pat}: must be true or false`);
            out.paths.all = pv;
          } else if (pk === 'watch' || pk === 'exclude' || pk === 'suffixes') {
            const list = stringList(pv, pat);
            // An exact exclude is stored with a NUL after it: one byte less room.
            const room = (p: string) => (pk === 'exclude' && !p.endsWith('/') ? 255 : 256);
            const bad = list.find((p) => Buffer.byteLength(p) > room(p) || (pk !== 'suffixes' && !p.startsWith('/')));
            if (bad !== undefined) throw new CaptureError(`${pat}: '${bad}' must be ${pk === 'suffixes' ? '' : 'absolute and '}at most ${room(bad)} bytes`);
            out.paths[pk] = list;
          } else {
            throw new CaptureError(`${pat}: unknown key; known keys are ${PATH_KEYS.join(', ')}`);
          }
        }
        break;
      }
      case 'ports':
        if (!Array.isArray(value) || !value.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) throw new CaptureError(`${at}: must be a list of port numbers from 1 to 65535`);
        out.ports = value as number[];
        break;
      case 'capabilities':
        if (value !== 'first' && value !== 'every') throw new CaptureError(`${at}: must be 'first' (each capability once per process and outcome) or 'every'`);
        out.capabilities = value;
        break;
      case 'countSyscalls':
        if (typeof value !== 'boolean') throw new CaptureError(`${at}: must be true or false`);
        out.countSyscalls = value;
        break;
      case 'stream':
        out.stream = stringList(value, at);
        break;
      case 'environment':
        if (typeof value !== 'boolean') throw new CaptureError(`${at}: must be true or false`);
        out.environment = value;
        break;
      default:
        throw new CaptureError(`${at}: unknown key; known keys are ${CAPTURE_KEYS.join(', ')}`);
    }
  }
  return out;
}

/** Fills the kernel maps from a capture configuration (the pushdown). */
export function pushCapture(sensor: BpfSensor, capture: CaptureConfig): void {
  const rules = new Map<number, Buffer>();
  for (const name of capture.syscalls) {
    const spec = SYSCALL_SPECS[name];
    // The x86-64 call and its i386 twins (a compat call is captured like the 64-bit one).
    if (spec) for (const slot of ruleSlots(name)) rules.set(slot, encodeRule(spec));
  }
  sensor.setSyscallRules(rules);
  const prefixes = new Map<string, boolean>();
  for (const p of capture.paths.watch) {
    prefixes.set(p, true);
    // A watched tree's directory itself (the kernel's path of an open /etc is "/etc"): that
    // exact path, unless an exclude names it.
    if (p.endsWith('/') && p.length > 1 && Buffer.byteLength(p) <= 256) prefixes.set(`${p.slice(0, -1)}\0`, true);
  }
  // An exclude ending in '/' drops a directory's tree; any other drops that exact path
  // (a NUL after it, which the kernel side puts after the path it judges), so excluding
  // /etc/localtime does not also hide a write to /etc/localtime2.
  for (const p of capture.paths.exclude) prefixes.set(p.endsWith('/') ? p : `${p}\0`, false);
  sensor.setWatchedPaths(prefixes, capture.paths.suffixes, true);
  sensor.setWatchedPorts(capture.ports);
}

/**
 * The capture the kernel gets for a policy. When every output carries only alerts, the
 * kernel sends only what some rule can match (the rules' system calls and paths); when
 * an output writes every event, the configured capture is kept and the rules' needs are
 * added to it, so a path or call a rule judges is never dropped in the kernel. An
 * exclude that would hide a path a rule names is left out.
 */
export function captureForPolicy(configured: CaptureConfig, needs: CaptureNeeds, alertsOnly: boolean): CaptureConfig {
  const out = structuredClone(configured);
  const syscalls = alertsOnly ? new Set<string>() : new Set(configured.syscalls);
  for (const c of needs.syscalls) syscalls.add(c);
  out.syscalls = [...syscalls].filter((n) => Object.prototype.hasOwnProperty.call(SYSCALL_SPECS, n));
  const watch = new Set(alertsOnly ? [] : configured.paths.watch);
  for (const p of needs.prefixes) watch.add(p);
  const suffixes = new Set(alertsOnly ? [] : configured.paths.suffixes);
  for (const sfx of needs.suffixes) suffixes.add(sfx);
  out.paths.watch = [...watch];
  out.paths.suffixes = [...suffixes];
  out.paths.exclude = configured.paths.exclude.filter((x) => ![...needs.prefixes].some((p) => (x.endsWith('/') ? p.startsWith(x) : p === x)));
  out.paths.all = configured.paths.all || needs.allPaths;
  return out;
}
