// The agent's configuration: defaults, a YAML file (--config) and flags, in that order
// of precedence. Every problem is reported with where it is (file and key, or flag)
// and what is expected.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import YAML from 'yaml';
import { parseOutputSpec, type OutputSpec } from './outputs.js';
import { CaptureError, DEFAULT_CAPTURE, parseCapture, type CaptureConfig } from './capture.js';
import { DEFAULT_RESPOND, parseRespondConfig, RespondConfigError, type RespondConfig } from '../respond/index.js';
import { LOG_USAGE, applyLogFlag, finishLogConfig, parseAnchorSection, parseLogSection, type AnchorSettings, type LogFlags, type LogSettings } from '../attest/agent-config.js';

export interface AgentConfig {
  host: string;
  outputs: OutputSpec[];
  btfPath: string | undefined;
  ringBufferBytes: number;
  /** What each container may queue while the ring buffer is under pressure (see BudgetConfig). */
  budget: BudgetConfig;
  /**
   * Unread bytes in the ring buffer from which a record wakes the agent's reader; below,
   * the reader picks records up on its 20 ms poll timer. 0: the kernel wakes the reader
   * for every record that finds it idle. Default: 64 KiB (a quarter of a smaller ring).
   */
  wakeupBytes: number | undefined;
  dockerSocket: string;
  /** Stop after this many seconds (0: run until SIGINT/SIGTERM). */
  durationSeconds: number;
  capture: CaptureConfig;
  /** Where SIGUSR1 and stop write the per-container syscall counts ('' : nowhere). */
  countsPath: string;
  /** Prometheus text file of the agent's counters, rewritten every 5 s ('' : none). */
  metricsPath: string;
  /** Policy files and directories, loaded after the default rules, in this order. */
  policies: string[];
  /** Load vigil's default rule set first (--no-default-policy turns it off). */
  defaultPolicy: boolean;
  /** Countermeasures: dry run, protected containers, rate limits, control socket (docs/respond.md). */
  respond: RespondConfig;
  /** The tamper-evident log (--log DIR, config log.dir); undefined: none. */
  log?: LogSettings;
  /** Anchoring of the log's checkpoints in the BMC (--bmc URL --bmc-token FILE, config anchor). */
  anchor?: AnchorSettings;
  /** Image allow-lists checked in the kernel (--allowlists, config allowlists; docs/analysis.md). */
  allowlists: AllowlistSettings;
}

export interface AllowlistSettings {
  enabled: boolean;
  /** 'open' (default): an image with unresolved system-call sites is not checked; 'closed': its list stands. */
  unresolved: 'open' | 'closed';
  /** Analysis cache ('' : $VIGIL_CACHE_DIR or ~/.cache/vigil/analysis). */
  cacheDir: string;
  /** Analyse every ELF executable of the image, not only what its entrypoint and command reach. */
  allElf: boolean;
}

/**
 * The per-container budget (a token bucket in the kernel, bpf/common.h vigil_submit):
 * while the ring buffer is pressurePercent full or more, a container may spend rate
 * tokens per second (burst at once), a record costing a token per started KiB, twice as
 * much for each eighth of the room above the mark the ring is fuller, up to 32; what it
 * sends beyond is dropped in the kernel and told as its loss. The last quarter of that
 * room is a reserve that a container refused for budget in the last second cannot use,
 * so a flood cannot fill the ring against containers within their budgets. Below the
 * mark nothing is limited. rate 0: no budget (and no reserve).
 */
export interface BudgetConfig { rate: number; burst: number; pressurePercent: number }

/*
 * 10,000 tokens/s (about as many records: most are under 1 KiB) with a burst of 20,000: several such containers together stay well
 * under what the agent writes per second on one core, so a flood shrinks to its budget and
 * the ring drains. Enforced from three quarters full: below, the ring absorbs a burst as
 * it did before budgets (nothing is dropped that would have fitted); of the last quarter
 * (4 MiB by default) the top 1 MiB is the reserve for containers within their budgets. A
 * container's start under runc (~230 records) costs at most ~7,400 tokens even there.
 */
export const DEFAULT_BUDGET: BudgetConfig = { rate: 10_000, burst: 20_000, pressurePercent: 75 };

export class ConfigError extends Error {
  readonly code = 'VIGIL_BAD_CONFIG';
}

export const DEFAULT_CONFIG: AgentConfig = {
  host: os.hostname(),
  outputs: [{ format: 'text', path: '-' }],
  btfPath: undefined,
  // 16 MiB: a burst of 100,000 watched opens from one shell loop fits while the agent judges
  // and writes them (8 MiB lost part of it in about half the runs once the policy was on the path).
  ringBufferBytes: 16 * 1024 * 1024,
  budget: DEFAULT_BUDGET,
  wakeupBytes: undefined,
  dockerSocket: '/var/run/docker.sock',
  durationSeconds: 0,
  capture: DEFAULT_CAPTURE,
  countsPath: '',
  metricsPath: '',
  policies: [],
  defaultPolicy: true,
  respond: DEFAULT_RESPOND,
  allowlists: { enabled: false, unresolved: 'open', cacheDir: '', allElf: false },
};

const FILE_KEYS = ['host', 'outputs', 'alerts', 'btf', 'ringBufferBytes', 'budget', 'wakeupBytes', 'dockerSocket', 'capture', 'countsPath', 'metricsPath', 'policies', 'defaultPolicy', 'respond', 'log', 'anchor', 'allowlists'] as const;

function parseAllowlists(value: unknown, where: string): AllowlistSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where}: must be a mapping with keys enabled, unresolved, cacheDir, allElf`);
  const out: AllowlistSettings = { ...DEFAULT_CONFIG.allowlists };
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    switch (k) {
      case 'enabled':
      case 'allElf':
        if (typeof v !== 'boolean') throw new ConfigError(`${where}.${k}: must be true or false`);
        out[k] = v;
        break;
      case 'unresolved':
        if (v !== 'open' && v !== 'closed') throw new ConfigError(`${where}.unresolved: must be 'open' or 'closed', got ${JSON.stringify(v)}`);
        out.unresolved = v;
        break;
      case 'cacheDir':
        if (typeof v !== 'string' || !v.startsWith('/')) throw new ConfigError(`${where}.cacheDir: must be an absolute directory path`);
        out.cacheDir = v;
        break;
      default:
        throw new ConfigError(`${where}: unknown key '${k}' (expected enabled, unresolved, cacheDir, allElf)`);
    }
  }
  return out;
}

function checkRingBytes(n: unknown, where: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 4096 || (n & (n - 1)) !== 0 || n > 1 << 30) {
    throw new ConfigError(`${where}: ring buffer size must be a power of two between 4096 and 1073741824 bytes, got ${JSON.stringify(n)}`);
  }
  return n;
}

function budgetNumber(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${where}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

function parseBudgetSection(value: unknown, where: string): BudgetConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${where}: must be a mapping with keys rate, burst, pressurePercent`);
  const out: BudgetConfig = { ...DEFAULT_BUDGET };
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'rate') out.rate = budgetNumber(v, `${where}.rate`, 0, 100_000_000);
    else if (k === 'burst') out.burst = budgetNumber(v, `${where}.burst`, 1024, 1_000_000_000);
    else if (k === 'pressurePercent') out.pressurePercent = budgetNumber(v, `${where}.pressurePercent`, 0, 100);
    else throw new ConfigError(`${where}.${k}: unknown key (expected rate, burst, pressurePercent)`);
  }
  return out;
}

/** --container-budget RATE[:BURST] (records/s, records), or 0 for none. */
function parseBudgetFlag(v: string): Partial<BudgetConfig> {
  const m = /^(\d+)(?::(\d+))?$/.exec(v);
  if (!m) throw new ConfigError(`option --container-budget: expected RATE or RATE:BURST (records per second, records), got '${v}'`);
  const rate = budgetNumber(Number(m[1]), 'option --container-budget rate', 0, 100_000_000);
  return m[2] === undefined ? { rate } : { rate, burst: budgetNumber(Number(m[2]), 'option --container-budget burst', 1024, 1_000_000_000) };
}

export function loadConfigFile(path: string): Partial<AgentConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`config file ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path}: the top level must be a mapping of keys (${FILE_KEYS.join(', ')})`);
  const out: Partial<AgentConfig> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const where = `config file ${path}, key '${key}'`;
    switch (key) {
      case 'host':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: must be a non-empty string`);
        out.host = value;
        break;
      case 'outputs':
      case 'alerts': {
        if (!Array.isArray(value) || (key === 'outputs' && value.length === 0) || !value.every((v) => typeof v === 'string')) {
          throw new ConfigError(`${where}: must be a ${key === 'outputs' ? 'non-empty ' : ''}list of FORMAT:PATH strings such as jsonl:/var/log/vigil/events.jsonl`);
        }
        const specs = (value as string[]).map((v, i) => parseOutputSpec(v, `${where}[${i}]`, key === 'alerts'));
        // Alerts are outputs that carry only INSECURE events; both lists are kept, in that order.
        out.outputs = key === 'outputs' ? [...specs, ...(out.outputs ?? []).filter((o) => o.insecureOnly)] : [...(out.outputs ?? []).filter((o) => !o.insecureOnly), ...specs];
        break;
      }
      case 'policies':
        if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) throw new ConfigError(`${where}: must be a list of policy files or directories`);
        out.policies = value as string[];
        break;
      case 'defaultPolicy':
        if (typeof value !== 'boolean') throw new ConfigError(`${where}: must be true or false`);
        out.defaultPolicy = value;
        break;
      case 'btf':
        if (typeof value !== 'string') throw new ConfigError(`${where}: must be the path of a BTF file`);
        out.btfPath = value;
        break;
      case 'ringBufferBytes':
        out.ringBufferBytes = checkRingBytes(value, where);
        break;
      case 'budget':
        out.budget = parseBudgetSection(value, where);
        break;
      case 'wakeupBytes':
        out.wakeupBytes = budgetNumber(value, where, 0, 1 << 30);
        break;
      case 'dockerSocket':
        if (typeof value !== 'string') throw new ConfigError(`${where}: must be the path of the Docker API socket`);
        out.dockerSocket = value;
        break;
      case 'capture':
        try {
          out.capture = parseCapture(value, `config file ${path}, key 'capture'`);
        } catch (e) {
          if (e instanceof CaptureError) throw new ConfigError(e.message);
          throw e;
        }
        break;
      case 'respond':
        try {
          out.respond = parseRespondConfig(value, `config file ${path}, key 'respond'`);
        } catch (e) {
          if (e instanceof RespondConfigError) throw new ConfigError(e.message);
          throw e;
        }
        break;
      case 'allowlists':
        out.allowlists = parseAllowlists(value, where);
        break;
      case 'countsPath':
      case 'metricsPath':
        if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: must be a file path`);
        out[key] = value;
        break;
      case 'log':
      case 'anchor':
        try {
          // Partial here; flags complete and check them in parseAgentArgs.
          if (key === 'log') out.log = parseLogSection(value, where) as LogSettings;
          else out.anchor = parseAnchorSection(value, where) as AnchorSettings;
        } catch (e) {
          throw new ConfigError((e as Error).message);
        }
        break;
      default:
        throw new ConfigError(`${where}: unknown key; known keys are ${FILE_KEYS.join(', ')}`);
    }
  }
  return out;
}

export const AGENT_USAGE = `usage: vigil agent [options]

Watches every container on this host with eBPF and writes one event per line.

options:
  --config FILE          YAML file with keys: ${FILE_KEYS.join(', ')}
  --output FORMAT:PATH   jsonl or text, to a file or '-' for stdout; repeatable
                         (default: text:- when neither --output nor --alerts is given)
  --alerts FORMAT:PATH   an output that carries only INSECURE events; repeatable
  --policy FILE|DIR      policy documents loaded after the default rules; repeatable
  --no-default-policy    do not load vigil's default rule set
  --host NAME            host name written in every event (default: this host's)
  --btf FILE             kernel BTF file, for kernels without /sys/kernel/btf/vmlinux
  --ring-buffer-bytes N  size of the kernel event ring buffer (power of two, default 16 MiB)
  --container-budget RATE[:BURST]
                         tokens/s (and burst) each container may spend while the ring
                         buffer is 3/4 full or more (a record costs a token per started
                         KiB); beyond, its own records are dropped and told as its loss
                         (default 10000:20000; 0: no budget)
  --wakeup-bytes N       unread bytes in the ring buffer that wake the reader (default
                         64 KiB; below, it reads every 20 ms; 0: wake on every record)
  --docker-socket PATH   Docker Engine API socket (default /var/run/docker.sock)
  --duration SECONDS     stop after this long (default: run until SIGINT or SIGTERM)
  --stream CONTAINER     stream every system call of this container (name or id); repeatable
  --counts PATH          write per-container syscall counts here on SIGUSR1 and at stop
  --all-paths            report file events for every path, not only the watched ones
  --metrics PATH         write the agent's counters (Prometheus text format) here every 5 s
  --dry-run              countermeasures are logged as "would ..." and not taken
  --allowlists           check each container's system calls against the allow-list of its image
                         (analysed when the container starts, cached by image id; docs/analysis.md)
  --control-socket PATH  the control socket for \`vigil respond\` (default /run/vigil/respond.sock)
  --no-control-socket    no control socket
${LOG_USAGE}
  -h, --help             this text

The host needs Linux with BTF, root (or CAP_BPF with CAP_PERFMON) and a container runtime.`;

/** Parses flags over the config file over the defaults. Returns null for --help. */
export function parseAgentArgs(argv: string[]): AgentConfig | null {
  const flagOutputs: OutputSpec[] = [];
  const flagAlerts: OutputSpec[] = [];
  const flagPolicies: string[] = [];
  let noDefaultPolicy = false;
  const flags: Partial<AgentConfig> = {};
  let configPath: string | undefined;
  let flagBudget: Partial<BudgetConfig> | undefined;
  const streams: string[] = [];
  let allPaths = false;
  let dryRun = false;
  let allowlists = false;
  let controlSocket: string | undefined;
  const logFlags: LogFlags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new ConfigError(`option ${name} needs a value (see vigil agent --help)`);
      return v;
    };
    switch (name) {
      case '-h':
      case '--help':
        return null;
      case '--config': configPath = value(); break;
      case '--output': flagOutputs.push(parseOutputSpec(value(), 'option --output')); break;
      case '--alerts': flagAlerts.push(parseOutputSpec(value(), 'option --alerts', true)); break;
      case '--policy': flagPolicies.push(value()); break;
      case '--no-default-policy': noDefaultPolicy = true; break;
      case '--host': flags.host = value(); break;
      case '--btf': flags.btfPath = value(); break;
      case '--docker-socket': flags.dockerSocket = value(); break;
      case '--stream': streams.push(value()); break;
      case '--counts': flags.countsPath = value(); break;
      case '--metrics': flags.metricsPath = value(); break;
      case '--all-paths': allPaths = true; break;
      case '--dry-run': dryRun = true; break;
      case '--allowlists': allowlists = true; break;
      case '--no-control-socket': controlSocket = ''; break;
      case '--control-socket': {
        controlSocket = value();
        if (!controlSocket.startsWith('/')) throw new ConfigError(`option --control-socket: expected an absolute path, got '${controlSocket}'`);
        break;
      }
      case '--container-budget': flagBudget = parseBudgetFlag(value()); break;
      case '--wakeup-bytes': {
        const v = value();
        flags.wakeupBytes = budgetNumber(/^\d+$/.test(v) ? Number(v) : v, 'option --wakeup-bytes', 0, 1 << 30);
        break;
      }
      case '--ring-buffer-bytes': {
        const v = value();
        flags.ringBufferBytes = checkRingBytes(/^\d+$/.test(v) ? Number(v) : v, 'option --ring-buffer-bytes');
        break;
      }
      case '--duration': {
        const v = value();
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`option --duration: expected a positive number of seconds, got '${v}'`);
        flags.durationSeconds = n;
        break;
      }
      default:
        try {
          if (applyLogFlag(logFlags, name, value)) break;
        } catch (e) {
          throw new ConfigError((e as Error).message);
        }
        throw new ConfigError(`unknown option '${arg}' (see vigil agent --help)`);
    }
  }
  const fromFile = configPath ? loadConfigFile(configPath) : {};
  const merged: AgentConfig = { ...DEFAULT_CONFIG, ...fromFile, ...flags };
  // Flags replace the file's outputs (and alerts) of the same kind.
  if (flagOutputs.length > 0 || flagAlerts.length > 0) {
    const fileOutputs = fromFile.outputs ?? [];
    const all = flagOutputs.length > 0 ? flagOutputs : fileOutputs.filter((o) => !o.insecureOnly);
    const alerts = flagAlerts.length > 0 ? flagAlerts : fileOutputs.filter((o) => o.insecureOnly);
    merged.outputs = [...all, ...alerts];
  }
  if (flagPolicies.length > 0) merged.policies = [...(fromFile.policies ?? []), ...flagPolicies];
  if (noDefaultPolicy) merged.defaultPolicy = false;
  if (flagBudget) merged.budget = { ...merged.budget, ...flagBudget };
  if (dryRun || controlSocket !== undefined) {
    merged.respond = structuredClone(merged.respond);
    if (dryRun) merged.respond.dryRun = true;
    if (controlSocket !== undefined) merged.respond.socket = controlSocket;
  }
  try {
    Object.assign(merged, finishLogConfig(fromFile.log, fromFile.anchor, logFlags));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  if (allowlists) merged.allowlists = { ...merged.allowlists, enabled: true };
  if (streams.length > 0 || allPaths) {
    merged.capture = structuredClone(merged.capture);
    merged.capture.stream.push(...streams);
    if (allPaths) merged.capture.paths.all = true;
  }
  return merged;
}
