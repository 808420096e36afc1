// Stronger kernel hooks than bpf_send_signal, looked for at start. A tracepoint program can
// only end a process after its call; a BPF-LSM program (or bpf_override_return on a kprobe)
// could make the call itself fail. vigil never requires either: it reports which it found,
// and why not, so an operator knows which layer stops what on this host.
import { existsSync, readFileSync } from 'node:fs';
import koffi from 'koffi';

export interface HookAvailability {
  available: boolean;
  /** What was found, in a few words. */
  why: string;
}

export interface StrongerHooks {
  bpfLsm: HookAvailability;
  overrideReturn: HookAvailability;
}

const BPF_PROG_TYPE_KPROBE = 2;
const BPF_PROG_TYPE_LSM = 29;
const BPF_FUNC_override_return = 58;

/** The active LSMs (securityfs), or undefined when it cannot be read. */
function activeLsms(): string[] | undefined {
  try {
    return readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').filter(Boolean);
  } catch {
    return undefined;
  }
}

/**
 * Probes the running kernel: BPF-LSM needs "bpf" among the active LSMs and an LSM program the
 * kernel loads (it needs BPF trampolines); bpf_override_return needs the helper and kprobes (the
 * kprobe PMU). libbpf's probes load a minimal program and unload it.
 */
export function probeStrongerHooks(): StrongerHooks {
  let progType: (t: number) => number = () => -1;
  let helper: (t: number, h: number) => number = () => -1;
  try {
    const lib = koffi.load('libbpf.so.1');
    const pt = lib.func('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)');
    const ph = lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)');
    progType = (t) => pt(t, null) as number;
    helper = (t, h) => ph(t, h, null) as number;
  } catch {
    // no libbpf: nothing loads, and the sensor says so itself
  }
  const lsms = activeLsms();
  let bpfLsm: HookAvailability;
  if (progType(BPF_PROG_TYPE_LSM) !== 1) bpfLsm = { available: false, why: 'the kernel does not load LSM programs (no BPF trampolines)' };
  else if (lsms === undefined) bpfLsm = { available: false, why: 'the active LSMs cannot be read (securityfs not mounted at /sys/kernel/security)' };
  else if (!lsms.includes('bpf')) bpfLsm = { available: false, why: `"bpf" is not an active LSM (lsm=${lsms.join(',')})` };
  else bpfLsm = { available: true, why: 'BPF-LSM programs load' };
  let overrideReturn: HookAvailability;
  if (!existsSync('/sys/bus/event_source/devices/kprobe')) overrideReturn = { available: false, why: 'no kprobes (CONFIG_KPROBES)' };
  else if (helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_override_return) !== 1) overrideReturn = { available: false, why: 'the helper is not available (CONFIG_BPF_KPROBE_OVERRIDE)' };
  else overrideReturn = { available: true, why: 'kprobes and the helper are there' };
  return { bpfLsm, overrideReturn };
}

/** One line for the agent's start: which layer stops a call here. */
export function strongerHooksLine(h: StrongerHooks): string {
  const found = [h.bpfLsm.available ? 'BPF-LSM' : '', h.overrideReturn.available ? 'bpf_override_return' : ''].filter(Boolean);
  const detail = `BPF-LSM: ${h.bpfLsm.why}; bpf_override_return: ${h.overrideReturn.why}`;
  return found.length === 0
    ? `in-kernel kill: SIGKILL at the call (the call itself completes); no stronger hook to make calls fail here (${detail})`
    : `in-kernel kill: SIGKILL at the call; ${found.join(' and ')} found on this host but not used yet: calls still complete (${detail})`;
}
