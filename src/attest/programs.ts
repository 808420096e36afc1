// Re-measurement of the agent's BPF programs after start. The start record anchors the
// programs as loaded; this re-checks, every few hundred milliseconds, that each link the
// agent made still exists in the kernel and still runs the same program (same id, same
// tag). It asks the kernel by id, not through the agent's own link fds: a host-root
// attacker detaches a tracing link by making the agent close its fd (ptrace, injected
// close(2)), after which the fd number may name anything. A change is reported once, as
// an INSECURE entry the log seals and anchors at once.
//
// It also watches for programs *added* on the agent's hooks: a program of a tracing type
// that appears after the start and runs on a tracepoint the agent hooks can change what
// the agent's programs see (bpf_probe_write_user on a syscall's arguments between their
// read and the kernel's) or hide it. New links (and new programs) are found by id: the
// kernel hands both out in increasing order, so each re-check asks only for ids after the
// last one seen. A link names its hook (raw_tracepoint and tp_btf links: the tracepoint;
// perf_event links: the tracepoint too); a program with no link that is still there at the
// next re-check is looked for on the perf events of every process (attached with
// PERF_EVENT_IOC_SET_BPF), and, when it is on none and still has no link a few seconds
// after it appeared (a loader attaches right after loading), reported as attached
// somewhere unknown.
// A program the agent's own process holds is never reported; one whose tag (the kernel's
// hash of its instructions) is the tag of the agent's own program on that hook is vigil's
// own code loaded by another vigil agent: written down as NORMAL (sameCode), not an alert.
import type { AttachmentInfo, KernelLink, KernelProgram } from '../sensor/index.js';
import type { PerfAttachment, ProgramDetail, ProgramHolder } from './kernel-bpf.js';

/** What the added-program watch asks the kernel (kernel-bpf.ts; a test may give its own). */
export interface KernelScan {
  programIdsAfter(id: number): number[];
  linkIdsAfter(id: number): number[];
  programDetail(id: number): ProgramDetail | null;
  linkInfo(id: number): KernelLink | null;
  whereArePrograms(progIds: readonly number[]): Map<number, { holders: ProgramHolder[]; perf: PerfAttachment[] }>;
  isTracingType(type: number): boolean;
  progTypeName(type: number): string;
  linkTypeName(type: number): string;
  /** This process: the programs it holds are the agent's own. */
  selfPid: number;
}

export interface ProgramProbe {
  link: (id: number) => KernelLink | null;
  program: (id: number) => KernelProgram | null;
  /** Without it, only the agent's own links are re-checked. */
  scan?: KernelScan;
}

/** One of the agent's own programs changed. */
export interface OwnProgramChange {
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

/** A program of someone else's on one of the agent's hooks (or, unlinked, on a hook nobody can name). */
export interface AddedProgramChange {
  change: 'added';
  /** The tracepoint it runs on; '' when no link or perf event names it. */
  hook: string;
  /** The agent's programs on that hook (all of them when the hook is unknown). */
  ours: Array<{ object: string; program: string; section: string }>;
  /** How it is attached, in words: "raw_tracepoint link 41", "perf event fd 5 of pid 99 (tracepoint, no BPF link)", "unknown (...)". */
  attachment: string;
  /** Its link, 0 when it has none. */
  linkId: number;
  progId: number;
  name: string;
  /** The program type's name (tracepoint, raw_tracepoint, tracing, kprobe, perf_event...). */
  type: string;
  tag: string;
  uid: number;
  /** The processes that hold it (the loader, if it still does), at most a few, and through which fds. */
  processes: ProgramHolder[];
}

export type ProgramChange = OwnProgramChange | AddedProgramChange;

/** The rule name of a change, for the INSECURE entry's verdict. */
export function changeRule(c: ProgramChange): string {
  if (c.change === 'detached') return 'monitor program detached';
  if (c.change === 'replaced') return 'monitor program replaced';
  return 'program added on a monitor hook';
}

/** The tracepoint an attachment of ours runs on: the link's name for it, else its section's last part (tp_btf/sys_enter: sys_enter). */
function hookOf(a: { tpName: string; section: string }): string {
  if (a.tpName) return a.tpName;
  const parts = a.section.split('/');
  return parts[parts.length - 1] ?? a.section;
}

/** The tracepoint a new link names (raw_tracepoint and tp_btf links, perf_event links on a tracepoint), or ''. */
function linkHook(l: KernelLink): string {
  return l.linkType === 1 || l.linkType === 7 ? l.tpName : '';
}

/**
 * How long a new program may stay without a link or a perf event before it is reported
 * as attached somewhere unknown: a loader attaches right after loading, but an agent
 * loading many programs on a busy machine may take seconds between the two.
 */
export const UNLINKED_GRACE_MS = 5000;

export class ProgramWatch {
  private readonly reported = new Set<number>();
  private readonly ownProgIds: Set<number>;
  /** Hook name → the agent's programs on it. */
  private readonly hooks = new Map<string, Array<{ object: string; program: string; section: string; tag: string }>>();
  private lastProgId = 0;
  private lastLinkId = 0;
  /** New programs without a link yet: when they were first seen, and whether the perf events were searched for them. */
  private readonly unlinked = new Map<number, { since: number; searched: boolean }>();
  /**
   * The programs of the links seen in the last check (decided by their link, whatever it
   * hooks): a program loaded after that check's program scan and linked before its link
   * scan is scanned only in the next one.
   */
  private recentlyLinked = new Set<number>();
  private readonly addedReported = new Set<number>();
  private sameCode: AddedProgramChange[] = [];
  /**
   * Programs of others already on the agent's hooks when it started (through a link that
   * names the hook): not alerts (nobody can tell when they came, and another vigil agent's
   * are the usual case), but written down with the start, so a verifier sees them.
   */
  readonly present: Array<AddedProgramChange & { sameCodeAsOurs: boolean }> = [];

  constructor(readonly baseline: readonly AttachmentInfo[], private readonly probe: ProgramProbe, private readonly now: () => number = Date.now) {
    this.ownProgIds = new Set(baseline.map((a) => a.progId));
    for (const a of baseline) {
      const h = hookOf(a);
      const list = this.hooks.get(h) ?? [];
      list.push({ object: a.object, program: a.program, section: a.section, tag: a.tag });
      this.hooks.set(h, list);
    }
    const scan = probe.scan;
    if (scan) {
      // What is there now is the start's world: only what comes after it is looked at.
      this.lastProgId = scan.programIdsAfter(0).pop() ?? 0;
      const links = scan.linkIdsAfter(0);
      this.lastLinkId = links[links.length - 1] ?? 0;
      this.present.push(...this.presentOnHooks(scan, links));
    }
  }

  private presentOnHooks(scan: KernelScan, linkIds: readonly number[]): Array<AddedProgramChange & { sameCodeAsOurs: boolean }> {
    const found: Array<{ l: KernelLink; hook: string; d: ProgramDetail }> = [];
    for (const id of linkIds) {
      const l = scan.linkInfo(id);
      if (!l || this.ownProgIds.has(l.progId)) continue;
      const hook = linkHook(l);
      if (!hook || !this.hooks.has(hook)) continue;
      const d = scan.programDetail(l.progId);
      if (d) found.push({ l, hook, d });
    }
    if (found.length === 0) return [];
    const where = scan.whereArePrograms(found.map((f) => f.d.progId));
    const out: Array<AddedProgramChange & { sameCodeAsOurs: boolean }> = [];
    for (const { l, hook, d } of found) {
      const holders = where.get(d.progId)?.holders ?? [];
      if (holders.some((h) => h.pid === scan.selfPid)) continue;
      const ours = this.hooks.get(hook) ?? [];
      out.push({
        change: 'added', hook, ours: ours.map(({ object, program, section }) => ({ object, program, section })), attachment: `${scan.linkTypeName(l.linkType)} link ${l.linkId}`,
        linkId: l.linkId, progId: d.progId, name: d.name, type: scan.progTypeName(d.type), tag: d.tag, uid: d.uid,
        processes: holders.map(({ pid, comm, exe, via }) => ({ pid, comm, exe, via })), sameCodeAsOurs: ours.some((o) => o.tag === d.tag),
      });
    }
    return out;
  }

  /** The hooks watched for added programs (tracepoint names). */
  get hookNames(): string[] { return [...this.hooks.keys()].sort(); }

  /** Programs added on the agent's hooks that run the agent's own code (another vigil agent), found since the last call. */
  takeSameCode(): AddedProgramChange[] {
    const out = this.sameCode;
    this.sameCode = [];
    return out;
  }

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
    if (this.probe.scan) out.push(...this.checkAdded(this.probe.scan));
    return out;
  }

  private checkAdded(scan: KernelScan): AddedProgramChange[] {
    const out: AddedProgramChange[] = [];
    const now = this.now();
    // Programs first, then links: a link made between the two calls is seen now, its
    // program (if it is newer still) on the next check (recentlyLinked).
    const progIds = scan.programIdsAfter(this.lastProgId);
    if (progIds.length > 0) this.lastProgId = progIds[progIds.length - 1] as number;
    for (const id of progIds) if (!this.ownProgIds.has(id) && !this.recentlyLinked.has(id)) this.unlinked.set(id, { since: now, searched: false });
    const linkIds = scan.linkIdsAfter(this.lastLinkId);
    if (linkIds.length > 0) this.lastLinkId = linkIds[linkIds.length - 1] as number;

    // What this check found, decided after one walk of the processes' fds for all of them
    // (a walk per program would let a host root who loads many programs stall the agent).
    const candidates: Array<{ progId: number; hook: string; attachment: string; linkId: number; detail: ProgramDetail }> = [];
    const linkedNow = new Set<number>();
    for (const id of linkIds) {
      const l = scan.linkInfo(id);
      if (!l) continue; // already gone
      linkedNow.add(l.progId);
      this.unlinked.delete(l.progId);
      if (this.ownProgIds.has(l.progId) || this.addedReported.has(l.progId)) continue;
      const hook = linkHook(l);
      if (!hook || !this.hooks.has(hook)) continue; // a hook the agent does not use
      const d = scan.programDetail(l.progId);
      if (d) candidates.push({ progId: l.progId, hook, attachment: `${scan.linkTypeName(l.linkType)} link ${l.linkId}`, linkId: l.linkId, detail: d }); // else gone: it ran for less than a re-check
    }
    this.recentlyLinked = linkedNow;

    // Unlinked ones: looked for on the perf events at their first re-check, and once more
    // (then reported wherever they are) when their grace is over.
    const search: Array<{ progId: number; detail: ProgramDetail; late: boolean }> = [];
    for (const [id, p] of this.unlinked) {
      if (p.since === now) continue; // seen for the first time now: give its loader until the next check to link it
      const late = now - p.since >= UNLINKED_GRACE_MS;
      if (p.searched && !late) continue;
      const d = scan.programDetail(id);
      if (!d || !scan.isTracingType(d.type)) { this.unlinked.delete(id); continue; } // gone (a loader's probe), or not a tracing program
      p.searched = true;
      search.push({ progId: id, detail: d, late });
    }
    if (candidates.length === 0 && search.length === 0) return out;

    const where = scan.whereArePrograms([...candidates.map((c) => c.progId), ...search.map((c) => c.progId)]);
    const at = (id: number) => where.get(id) ?? { holders: [], perf: [] };
    for (const c of candidates) {
      const a = this.added(c.progId, c.hook, this.hooks.get(c.hook) ?? [], c.attachment, c.linkId, c.detail, at(c.progId).holders, scan);
      if (a) out.push(a);
    }
    for (const { progId, detail, late } of search) {
      const w = at(progId);
      const perf = w.perf[0];
      if (perf) {
        this.unlinked.delete(progId);
        const ours = this.hooks.get(perf.name);
        if (!ours) continue; // on a perf event of a hook the agent does not use
        const a = this.added(progId, perf.name, ours, `perf event fd ${perf.fd} of pid ${perf.pid} (${perf.kind}, no BPF link)`, 0, detail, w.holders, scan);
        if (a) out.push(a);
        continue;
      }
      if (!late) continue;
      this.unlinked.delete(progId);
      const a = this.added(progId, '', [...this.hooks.values()].flat(), 'somewhere unknown (no BPF link and no perf event names its hook; or only loaded)', 0, detail, w.holders, scan);
      if (a) out.push(a);
    }
    return out;
  }

  private added(progId: number, hook: string, ours: Array<{ object: string; program: string; section: string; tag: string }>, attachment: string,
    linkId: number, d: ProgramDetail, hs: ProgramHolder[], scan: KernelScan): AddedProgramChange | undefined {
    if (this.addedReported.has(progId)) return undefined; // two new links of one program in one check: reported once
    if (hs.some((h) => h.pid === scan.selfPid)) { this.ownProgIds.add(progId); return undefined; } // the agent's own (loaded after start)
    this.addedReported.add(progId);
    const c: AddedProgramChange = {
      change: 'added', hook, ours: ours.map(({ object, program, section }) => ({ object, program, section })), attachment, linkId,
      progId, name: d.name, type: scan.progTypeName(d.type), tag: d.tag, uid: d.uid,
      processes: hs.map(({ pid, comm, exe, via }) => ({ pid, comm, exe, via })),
    };
    if (ours.some((o) => o.tag === d.tag)) { this.sameCode.push(c); return undefined; }
    return c;
  }
}

/** One sentence per change, for the agent's log line and the verifier. */
export function describeChange(c: ProgramChange): string {
  if (c.change !== 'added') {
    if (c.change === 'detached') return `BPF program ${c.program} of ${c.object} (${c.section}, link ${c.linkId}, program ${c.progId}) was detached`;
    return `BPF program ${c.program} of ${c.object} (${c.section}, link ${c.linkId}) now runs program ${c.found?.progId ?? '?'} (${c.found?.name ?? '?'}, tag ${c.found?.tag ?? '?'}) instead of ${c.progId} (tag ${c.tag})`;
  }
  const who = c.processes.length > 0 ? `held by ${c.processes.map((p) => `pid ${p.pid} ${p.comm || '?'} (${p.exe || '?'}: ${p.via})`).join('; ')}` : 'its loader unknown (no process holds it)';
  const prog = `BPF program ${c.progId} '${c.name}' (${c.type}, tag ${c.tag}, loaded by uid ${c.uid}, ${who})`;
  if (!c.hook) return `hooks may have been joined by ${prog}, attached ${c.attachment}`;
  const ours = c.ours.map((o) => `${o.program} of ${o.object}`).join(', ');
  return `hook ${c.hook} (${ours}) was joined by ${prog}, attached through ${c.attachment}`;
}
