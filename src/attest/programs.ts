// Re-measurement of the agent's BPF programs after start. The start record anchors the
// programs as loaded; this re-checks, every few hundred milliseconds, that each link the
// agent made still exists in the kernel and still runs the same program (same id, same
// tag). It asks the kernel by id, not through the agent's own link fds: a host-root
// attacker detaches a tracing link by making the agent close its fd (ptrace, injected
// close(2)), after which the fd number may name anything. A change is reported once, as
// an INSECURE entry the log seals and anchors at once.
import type { AttachmentInfo, KernelLink, KernelProgram } from '../sensor/index.js';

export interface ProgramProbe {
  link: (id: number) => KernelLink | null;
  program: (id: number) => KernelProgram | null;
}

export interface ProgramChange {
  /** detached: the link is gone from the kernel; replaced: it runs another program, or the program changed. */
  change: 'detached' | 'replaced';
  object: string;
  program: string;
  /** The hook, as the program's section names it (tp_btf/sys_enter). */
  section: string;
  linkId: number;
  progId: number;
  tag: string;
  /** What the kernel holds now (replaced). */
  found?: { progId: number; tag: string; name: string };
}

export class ProgramWatch {
  private readonly reported = new Set<number>();

  constructor(readonly baseline: readonly AttachmentInfo[], private readonly probe: ProgramProbe) {}

  /** The changes not reported before. */
  check(): ProgramChange[] {
    const out: ProgramChange[] = [];
    for (const a of this.baseline) {
      if (this.reported.has(a.linkId)) continue;
      const base = { object: a.object, program: a.program, section: a.section, linkId: a.linkId, progId: a.progId, tag: a.tag };
      const link = this.probe.link(a.linkId);
      if (!link) { out.push({ change: 'detached', ...base }); continue; }
      const prog = this.probe.program(link.progId);
      if (link.progId !== a.progId || !prog || prog.tag !== a.tag) {
        out.push({ change: 'replaced', ...base, found: { progId: link.progId, tag: prog?.tag ?? '', name: prog?.name ?? '' } });
      }
    }
    for (const c of out) this.reported.add(c.linkId);
    return out;
  }
}

/** One sentence per change, for the agent's log line and the verifier. */
export function describeChange(c: ProgramChange): string {
  if (c.change === 'detached') return `BPF program ${c.program} of ${c.object} (${c.section}, link ${c.linkId}, program ${c.progId}) was detached`;
  return `BPF program ${c.program} of ${c.object} (${c.section}, link ${c.linkId}) now runs program ${c.found?.progId ?? '?'} (${c.found?.name ?? '?'}, tag ${c.found?.tag ?? '?'}) instead of ${c.progId} (tag ${c.tag})`;
}
