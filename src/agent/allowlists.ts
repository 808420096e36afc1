// Image allow-lists in the kernel (bpf/allowlist.h): when a container appears, its image is
// analysed (src/analysis, in a worker, cached by image id) and the list loaded into the
// kernel's bitmap for the container's key; the kernel reports (and with the policy's kill,
// kills at) every call outside it. This module decides what each container gets and says
// so: loaded, not checked (and why), or off by policy; never silently unchecked.
import { Worker } from 'node:worker_threads';
import { allowlistBits, i386SyscallName, layout, syscallName, type ContainerRef } from '../events/index.js';
import type { PolicySet } from '../policy/index.js';
import type { AllowlistSettings } from './config.js';
import type { AnalysisAnswer, AnalysisRequest } from './allowlist-worker.js';

/** The rule whose verdict and action the allow-list check carries (policies/default/70-allowlist.yaml). */
export const ALLOWLIST_RULE = 'syscall not in allow-list';

export interface AllowlistKernel {
  setAllowlist(key: bigint, allowed: ReadonlySet<number>, flags: number): void;
  deleteAllowlist(key: bigint): void;
  takePendingCalls(key: bigint): Set<number> | undefined;
}

export type AllowlistReport =
  | { type: 'loaded'; image: string; imageId: string; size: number; added: string[]; enforce: string; cached: boolean }
  | { type: 'unchecked'; image: string; reason: string }
  | { type: 'off'; image: string; reason: string }
  /**
   * A call outside the list the kernel did not report itself: made before the list was loaded
   * (the start race: late false), or whose report the ring buffer had no room for, or that ran
   * as the list was being loaded (late true, found by the check each second).
   */
  | { type: 'before-list'; syscall: string; nr: number; abi: 'x86_64' | 'i386' | 'other'; late: boolean };

export interface AllowlistManagerOptions {
  settings: AllowlistSettings;
  dockerSocket: string;
  kernel: AllowlistKernel;
  policy: () => PolicySet | undefined;
  dryRun: () => boolean;
  /** The image to analyse for a container: its image id when known, else the name it was started with. */
  imageOf: (c: ContainerRef) => string;
  /** Does the resolver still know this key (a container that is gone is forgotten)? */
  known: (key: bigint) => boolean;
  report: (key: bigint, c: ContainerRef, r: AllowlistReport) => void;
  log: (msg: string) => void;
}

interface KeyState {
  container: ContainerRef;
  image: string;
  /** The bits allowed, once the list is loaded (what the check each second compares with). */
  bits?: ReadonlySet<number>;
}

/** How long a Docker container may go without its image named before it is reported unchecked. */
const IMAGE_WAIT_MS = 30_000;

/** The name an allow-list bit (a rule slot) stands for. */
export function bitName(bit: number): { syscall: string; nr: number; abi: 'x86_64' | 'i386' | 'other' } {
  if (bit < layout.I386_RULE_BASE) return { syscall: syscallName(bit), nr: bit, abi: 'x86_64' };
  if (bit < layout.ALLOW_OTHER) return { syscall: i386SyscallName(bit - layout.I386_RULE_BASE), nr: bit - layout.I386_RULE_BASE, abi: 'i386' };
  return { syscall: 'x32 or unnumbered', nr: -1, abi: 'other' };
}

export class AllowlistManager {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (a: AnalysisAnswer) => void>();
  private readonly analyses = new Map<string, Promise<AnalysisAnswer>>();
  private readonly keys = new Map<bigint, KeyState>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private lateTimer: NodeJS.Timeout | undefined;
  private readonly waitingImage = new Map<bigint, NodeJS.Timeout>();

  constructor(private readonly opts: AllowlistManagerOptions) {
    this.sweepTimer = setInterval(() => this.sweep(), 60_000);
    this.sweepTimer.unref();
    this.lateTimer = setInterval(() => this.reportLate(), 1000);
    this.lateTimer.unref();
  }

  /** A container key learned or its ref made fuller (name, image): decide its list. */
  onContainer(key: bigint, c: ContainerRef): void {
    if (c.runtime === 'docker' && c.image === '') {
      // The runtime's answer with the image follows; if it never comes (the engine down), say so.
      if (!this.keys.has(key) && !this.waitingImage.has(key)) {
        const t = setTimeout(() => {
          this.waitingImage.delete(key);
          if (!this.keys.has(key)) {
            this.keys.set(key, { container: c, image: '' });
            this.unchecked(key, c, c.id.slice(0, 12), `the runtime did not name its image within ${IMAGE_WAIT_MS / 1000} s`);
          }
        }, IMAGE_WAIT_MS);
        t.unref();
        this.waitingImage.set(key, t);
      }
      return;
    }
    const wait = this.waitingImage.get(key);
    if (wait) {
      clearTimeout(wait);
      this.waitingImage.delete(key);
    }
    const image = c.runtime === 'docker' ? this.opts.imageOf(c) : '';
    const before = this.keys.get(key);
    if (before && before.container.id === c.id && before.image === image) return;
    this.keys.set(key, { container: c, image });
    this.apply(key);
  }

  /** The policy changed: each container's rule, action and additions again. */
  reapply(): void {
    for (const key of this.keys.keys()) this.apply(key);
  }

  private apply(key: bigint): void {
    const st = this.keys.get(key);
    if (!st) return;
    const c = st.container;
    const what = c.image || c.id.slice(0, 12);
    if (st.image === '') {
      this.unchecked(key, c, what, `its runtime (${c.runtime}) names no image vigil can analyse`);
      return;
    }
    const rule = this.opts.policy()?.effectiveRule(ALLOWLIST_RULE, c);
    if (!rule) {
      this.install(key, new Set(), layout.ALLOWLIST_FLAG.ALLOW_ALL);
      this.opts.kernel.takePendingCalls(key);
      this.opts.report(key, c, { type: 'off', image: what, reason: `the rule '${ALLOWLIST_RULE}' is off for this container` });
      return;
    }
    this.analyze(st.image).then((a) => {
      if (this.keys.get(key) !== st) return; // replaced or forgotten meanwhile
      if (!a.ok) return this.unchecked(key, c, what, `its image could not be analysed: ${a.error}`);
      if (a.allowAll) return this.unchecked(key, c, what, `${a.unresolved} system-call site(s) of its image are unresolved and allowlists.unresolved is 'open'`);
      const now = this.opts.policy()?.effectiveRule(ALLOWLIST_RULE, c);
      if (!now) return; // turned off while it was analysed: the reload applied that
      const bits = new Set(a.numbers.filter((n) => n >= 0 && n < layout.I386_RULE_BASE));
      const added = this.opts.policy()?.allowlistAdditions(c) ?? [];
      for (const name of added) for (const b of allowlistBits(name) ?? []) bits.add(b);
      // The kernel kills on its own only when the rule's verdict cannot differ from its own
      // decision: with exceptions, it reports every call and the agent judges (and kills from
      // user space when the verdict says so).
      const killAsked = now.action === 'kill' && !this.opts.dryRun();
      const kernelKill = killAsked && now.exceptions === 0;
      const flags = kernelKill ? layout.ALLOWLIST_FLAG.KILL : killAsked ? layout.ALLOWLIST_FLAG.REPORT_EVERY : 0;
      this.install(key, bits, flags);
      st.bits = bits;
      const enforce = kernelKill ? 'kill' : killAsked ? 'kill from user space (the rule has exceptions)' : 'report';
      this.opts.report(key, c, { type: 'loaded', image: what, imageId: a.imageId, size: bits.size, added, enforce, cached: a.cached });
      // The start race: what ran before the list was in, reported now (after the list is
      // loaded: a call racing both is in the kernel's report or in this one).
      for (const bit of [...(this.opts.kernel.takePendingCalls(key) ?? [])].sort((x, y) => x - y)) {
        if (!bits.has(bit)) this.opts.report(key, c, { type: 'before-list', ...bitName(bit), late: false });
      }
    }, (e: Error) => this.unchecked(key, c, what, `its analysis failed: ${e.message}`));
  }

  private unchecked(key: bigint, c: ContainerRef, image: string, reason: string): void {
    this.install(key, new Set(), layout.ALLOWLIST_FLAG.ALLOW_ALL);
    this.opts.kernel.takePendingCalls(key);
    this.opts.report(key, c, { type: 'unchecked', image, reason });
  }

  private install(key: bigint, bits: ReadonlySet<number>, flags: number): void {
    try {
      this.opts.kernel.setAllowlist(key, bits, flags);
    } catch (e) {
      this.opts.log(`cannot load the allow-list of container key ${key} into the kernel: ${(e as Error).message}`);
    }
  }

  /** One analysis per image for the agent's life (the worker's cache makes a restart cheap too). */
  private analyze(image: string): Promise<AnalysisAnswer> {
    let p = this.analyses.get(image);
    if (!p) {
      p = this.request(image);
      this.analyses.set(image, p);
      // A failure is tried again at the image's next container, not remembered forever.
      p.then((a) => { if (!a.ok) this.analyses.delete(image); }, () => this.analyses.delete(image));
    }
    return p;
  }

  private request(image: string): Promise<AnalysisAnswer> {
    const w = this.ensureWorker();
    const id = this.nextId++;
    const s = this.opts.settings;
    const req: AnalysisRequest = { id, image, unresolved: s.unresolved, cacheDir: s.cacheDir, allElf: s.allElf, dockerSocket: this.opts.dockerSocket };
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      w.postMessage(req);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    // Bounded: one analysis at a time, in a heap of its own.
    const w = new Worker(new URL('./allowlist-worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 2048 } });
    w.unref();
    w.on('message', (a: AnalysisAnswer) => {
      const done = this.waiting.get(a.id);
      this.waiting.delete(a.id);
      done?.(a);
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.opts.log(`image analysis worker ${why}; the next analysis starts a new one`);
      for (const [id, done] of this.waiting) done({ id, ok: false, error: `the analysis worker ${why}` });
      this.waiting.clear();
    };
    w.on('error', (e) => fail(`failed: ${e.message}`));
    w.on('exit', (code) => fail(`exited (${code})`));
    this.worker = w;
    return w;
  }

  /**
   * Calls outside a loaded list that the kernel could not report (its ring buffer full at the
   * call) or that ran while the list was being loaded: the kernel set them in the pending
   * bitmap; each is reported here, within a second.
   */
  private reportLate(): void {
    for (const [key, st] of this.keys) {
      if (!st.bits) continue;
      const pending = this.opts.kernel.takePendingCalls(key);
      if (!pending) continue;
      for (const bit of [...pending].sort((x, y) => x - y)) {
        if (!st.bits.has(bit)) this.opts.report(key, st.container, { type: 'before-list', ...bitName(bit), late: true });
      }
    }
  }

  /** Lists of containers the resolver has forgotten (gone) leave the kernel. */
  private sweep(): void {
    for (const key of [...this.keys.keys()]) {
      if (this.opts.known(key)) continue;
      this.keys.delete(key);
      this.opts.kernel.deleteAllowlist(key);
    }
  }

  async stop(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.lateTimer) clearInterval(this.lateTimer);
    for (const t of this.waitingImage.values()) clearTimeout(t);
    this.reportLate();
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}
