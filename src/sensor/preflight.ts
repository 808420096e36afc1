// Checks the host can run the sensor before libbpf is asked to, so that a missing
// kernel feature or privilege gets one sentence saying what to do instead of a
// page of verifier output.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { SensorError } from './errors.js';
import { libbpf } from './libbpf.js';

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;

export function effectiveCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt('0x' + m[1]) : 0n;
}

/** The oldest kernel the programs load on: bpf_loop (5.17) is the newest feature they use. */
export const MIN_KERNEL = [5, 17] as const;

/** Why this kernel release is too old for vigil, or undefined when it is new enough. */
export function kernelTooOld(kernelRelease: string): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return undefined; // an unusual release string: let the loader decide
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major > MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor >= MIN_KERNEL[1])) return undefined;
  return `this kernel (${kernelRelease}) is too old: vigil needs Linux ${MIN_KERNEL.join('.')} or later (bpf_loop, task storage and ring buffers in tracing programs)`;
}

export function checkHost(opts: { btfPath?: string | undefined; objectPaths: string[] }): void {
  const old = kernelTooOld(release());
  if (old) throw new SensorError('VIGIL_KERNEL_TOO_OLD', old);
  const btf = opts.btfPath ?? '/sys/kernel/btf/vmlinux';
  if (!existsSync(btf)) {
    throw new SensorError(
      'VIGIL_NO_BTF',
      opts.btfPath
        ? `kernel BTF file ${btf} does not exist: pass --btf with the path of a BTF file for this kernel`
        : `this kernel exposes no BTF (${btf} is missing): use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or pass --btf with a BTF file for it`,
    );
  }
  try {
    accessSync(btf, constants.R_OK);
  } catch {
    throw new SensorError('VIGIL_NO_PRIVILEGE', `cannot read kernel BTF at ${btf}: run vigil agent as root`);
  }
  const caps = effectiveCapabilities();
  const has = (c: bigint) => ((caps >> c) & 1n) === 1n;
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) {
    throw new SensorError('VIGIL_NO_PRIVILEGE', 'loading BPF programs needs root, or CAP_BPF with CAP_PERFMON: run vigil agent as root');
  }
  for (const p of opts.objectPaths) {
    if (!existsSync(p)) {
      throw new SensorError('VIGIL_BPF_OBJECT_MISSING', `BPF object ${p} is missing: build it with 'make -C bpf' (scripts/bootstrap.sh does)`);
    }
  }
}

const BTF_KIND_TYPEDEF = 8;

/**
 * Does the kernel (or the given BTF file) have the BTF-enabled tracepoint `name`? A
 * tp_btf program attaches to the typedef btf_trace_<name> the kernel declares for each.
 */
export function kernelHasTracepoint(name: string, btfPath?: string): boolean {
  const { lib } = libbpf();
  const btf = btfPath ? lib.btf__parse(btfPath, null) : lib.btf__load_vmlinux_btf();
  if (!btf) return false;
  try {
    return lib.btf__find_by_name_kind(btf, `btf_trace_${name}`, BTF_KIND_TYPEDEF) > 0;
  } finally {
    lib.btf__free(btf);
  }
}
