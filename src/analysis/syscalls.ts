// The system calls one x86-64 ELF file can make, found by disassembly (iced-x86: a
// WebAssembly build of a complete x86 decoder, no system library, fast enough for a linear
// sweep of every executable section; measured in the issue at 7.5 M instructions/s).
//
// 1. A linear sweep of each executable section records, per instruction, its address,
//    length and control-flow kind (syscall, direct/indirect call or jump, conditional jump,
//    return), and the targets of direct branches.
// 2. At each `syscall` the value of rax is found by walking backwards over the control-flow
//    graph (fall-through and every direct jump into an address), following register moves
//    (`mov eax, imm`, `xor eax, eax`, `mov rax, rdi`, ...). Every path must end in a
//    constant: a path that reaches the start of a function with the value still in a register
//    makes that function a *wrapper* taking the number in that register (glibc's syscall()
//    in rdi, __syscall_cancel_arch and musl's __syscall_cp_asm in rsi, Go's Syscall in rax),
//    and the same walk is then done at each of its callers (direct calls and tail jumps).
//    A path that ends elsewhere (a load from memory, a value returned by a call) is an
//    unresolved site, listed with its address and reason.
// 3. Calls to imported functions that are wrappers in another file (glibc's `syscall`, or an
//    exported wrapper found in a library) are resolved the same way at their call sites here.
import { Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register, RegisterExt } from 'iced-x86';
import { ElfError, PT_LOAD, SHF_EXECINSTR, type Elf } from './elf.js';

export interface UnresolvedSite {
  /** Hex address in the file's own address space. */
  address: string;
  reason: string;
}

/**
 * What one file can do, by function, so the image analysis can keep only the functions that
 * can run (those reachable from the entry point, the loader's init/fini functions, every
 * function whose address is taken, and the exports other files import). JSON-serialisable:
 * it is cached by the file's content hash.
 */
export interface BinarySummary {
  /** Function start addresses, sorted; functions are referred to by index. */
  functions: number[];
  /** Call-graph edges [from, to] between function indices (calls, tail jumps, fall-through). */
  edges: [number, number][];
  /** Functions that may run whenever the file is loaded (init/fini, address taken). */
  roots: number[];
  /** The entry point's function, or -1. */
  entry: number;
  /** Exported function name -> function index. */
  exports: [string, number][];
  /** Names this file imports from others. */
  imports: string[];
  /** [function index, system-call number]: the function makes that call (itself, or through a wrapper). */
  syscalls: [number, number][];
  /** Exported functions that make a system call whose number is their argument in `reg`. */
  wrappers: { name: string; reg: string }[];
  unresolved: (UnresolvedSite & { fn: number })[];
  /** Sites in bytes that no function's control flow reaches (most likely data). */
  notCode: UnresolvedSite[];
  syscallSites: number;
  instructions: number;
}

// Kinds recorded by the sweep.
const K_OTHER = 0, K_SYSCALL = 1, K_CALL = 2, K_CALL_IND = 3, K_JMP = 4, K_JCC = 5, K_JMP_IND = 6, K_STOP = 7, K_INT80 = 8;

const GPR64 = [Register.RAX, Register.RCX, Register.RDX, Register.RBX, Register.RSP, Register.RBP, Register.RSI, Register.RDI,
  Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15];
const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const CALLEE_SAVED = new Set([Register.RBX, Register.RBP, Register.RSP, Register.R12, Register.R13, Register.R14, Register.R15]);
export const regName = (r: number): string => GPR_NAMES[GPR64.indexOf(r)] ?? `reg${r}`;
export const regByName = (n: string): number | undefined => GPR64[GPR_NAMES.indexOf(n)];

/** setuid, setgid, setreuid, setregid, setgroups, setresuid, setresgid. */
const SETXID_FAMILY = [105, 106, 113, 114, 116, 117, 119];

/** Above this a number is not an x86-64 system call (x32 numbers have bit 30 set). */
const MAX_SYSCALL = 1024;
/** Instructions of one file before it counts as too large (Debian's largest libraries have ~5 M). */
const MAX_INSTRUCTIONS = 40_000_000;
/** Steps of one backward walk before it gives up (reported as unresolved, never guessed). */
const WALK_BUDGET = 4000;

interface Region { start: number; end: number; fileOff: number; decoder: Decoder }

interface Walk { values: Set<number>; params: Set<string>; unknown: string[] }

export class BinaryAnalyzer {
  private ips: number[] = [];
  private lens: number[] = [];
  private kinds: number[] = [];
  private targets: number[] = [];
  private regions: Region[] = [];
  private jumpsTo = new Map<number, number[]>();
  private callsTo = new Map<number, number[]>();
  private functionStarts = new Set<number>();
  /** Starts that are symbols, direct call targets or the entry point (not only pointer targets). */
  private namedStarts = new Set<number>();
  private sortedStarts: number[] = [];
  /** PLT stub address or GOT slot -> imported name. */
  private importAt = new Map<number, string>();
  /** Code addresses found as constants (rip-relative lea, immediates, pointers in data). */
  private addressTaken = new Set<number>();
  private readonly instr = new Instruction();
  private readonly infoFactory = new InstructionInfoFactory();

  constructor(private readonly elf: Elf) {}

  private sweep(): void {
    const elf = this.elf;
    let areas = elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.type === 1 && s.size > 0)
      .map((s) => ({ name: s.name, addr: s.addr, off: s.offset, size: s.size }));
    // Without section headers the executable segments are swept instead.
    if (areas.length === 0) areas = elf.segments.filter((p) => p.type === PT_LOAD && (p.flags & 1) !== 0).map((p) => ({ name: 'segment', addr: p.vaddr, off: p.offset, size: p.filesz }));
    const pltStubs: number[] = [];
    for (const a of areas) {
      if (a.off + a.size > elf.data.length) continue; // checked by the ELF reader for sections; segments may lie
      const bytes = new Uint8Array(elf.data.buffer, elf.data.byteOffset + a.off, a.size);
      const decoder = new Decoder(64, bytes, DecoderOptions.None);
      decoder.ip = BigInt(a.addr);
      this.regions.push({ start: a.addr, end: a.addr + a.size, fileOff: a.off, decoder });
      const isPlt = a.name.startsWith('.plt');
      const ins = this.instr;
      let prevEndbr = -1;
      while (decoder.canDecode) {
        if (this.ips.length >= MAX_INSTRUCTIONS) throw new ElfError(elf.file, `more than ${MAX_INSTRUCTIONS} instructions: too large to disassemble`);
        const ip = a.addr + decoder.position;
        decoder.decodeOut(ins);
        let kind = K_OTHER, target = 0;
        const fc = ins.flowControl;
        if (fc !== FlowControl.Next) {
          if (ins.code === Code.Syscall) kind = K_SYSCALL;
          else switch (fc) {
            case FlowControl.Call:
              kind = K_CALL; target = Number(ins.nearBranchTarget); break;
            case FlowControl.IndirectCall:
              kind = K_CALL_IND; if (ins.isIpRelMemoryOperand) target = Number(ins.ipRelMemoryAddress); break;
            case FlowControl.UnconditionalBranch:
              kind = ins.op0Kind === OpKind.NearBranch64 ? K_JMP : K_JMP_IND; target = kind === K_JMP ? Number(ins.nearBranchTarget) : 0; break;
            case FlowControl.IndirectBranch:
              kind = K_JMP_IND; if (ins.isIpRelMemoryOperand) target = Number(ins.ipRelMemoryAddress); break;
            case FlowControl.ConditionalBranch:
              kind = K_JCC; target = ins.op0Kind === OpKind.NearBranch64 ? Number(ins.nearBranchTarget) : 0; break;
            case FlowControl.Return: case FlowControl.Exception:
              kind = K_STOP; break;
            case FlowControl.Interrupt:
              kind = ins.code === Code.Int_imm8 && ins.immediate8 === 0x80 ? K_INT80 : K_STOP; break;
            default:
              if (ins.mnemonic === Mnemonic.Hlt || ins.mnemonic === Mnemonic.Ud2) kind = K_STOP;
          }
        }
        else if (ins.isIpRelMemoryOperand && ins.mnemonic === Mnemonic.Lea) this.addressTaken.add(Number(ins.ipRelMemoryAddress));
        else if (ins.mnemonic === Mnemonic.Mov && ins.opCount === 2 && (ins.op1Kind === OpKind.Immediate32 || ins.op1Kind === OpKind.Immediate32to64 || ins.op1Kind === OpKind.Immediate64)) {
          const v = Number(ins.immediate(1));
          if (v > 0x1000) this.addressTaken.add(v);
        }
        const idx = this.ips.length;
        this.ips.push(ip); this.lens.push(ins.length); this.kinds.push(kind); this.targets.push(target);
        if (kind === K_JMP || kind === K_JCC) push(this.jumpsTo, target, idx);
        if (kind === K_CALL) { push(this.callsTo, target, idx); this.functionStarts.add(target); }
        if (isPlt && kind === K_JMP_IND && target !== 0) {
          const name = elf.gotImports.get(target);
          if (name) { this.importAt.set(ip, name); if (prevEndbr >= 0) this.importAt.set(prevEndbr, name); pltStubs.push(ip); }
        }
        prevEndbr = ins.code === Code.Endbr64 ? ip : -1;
      }
    }
    for (const f of elf.functions) this.functionStarts.add(f.value);
    if (elf.entry) this.functionStarts.add(elf.entry);
    this.namedStarts = new Set(this.functionStarts);
    for (const p of elf.relocatedPointers) this.addressTaken.add(p);
    for (const p of elf.initFini) this.addressTaken.add(p);
    // Without relocations (a static, non-PIE executable) pointers sit in data as they are.
    if (elf.type === 2) {
      for (const sec of elf.sections) {
        if (sec.type !== 1 && sec.type !== 14 && sec.type !== 15) continue; // PROGBITS, INIT_ARRAY, FINI_ARRAY
        if ((sec.flags & SHF_EXECINSTR) !== 0 || sec.offset + sec.size > elf.data.length) continue;
        for (let o = sec.offset + ((8 - (sec.addr % 8)) % 8); o + 8 <= sec.offset + sec.size; o += 8) {
          const lo = elf.data.readUInt32LE(o), hi = elf.data.readUInt32LE(o + 4);
          if (hi === 0 && lo > 0x1000) this.addressTaken.add(lo);
        }
      }
    }
    // Only addresses of instructions count; each becomes a function start (a stripped file
    // names no functions, and a function reached only through a pointer is still code).
    for (const t of this.addressTaken) {
      if (this.instructionAt(t)) this.functionStarts.add(t); else this.addressTaken.delete(t);
    }
    // A call through the GOT (-fno-plt) names its import by the slot.
    for (const [slot, name] of elf.gotImports) this.importAt.set(slot, name);
    this.sortedStarts = [...this.functionStarts].sort((a, b) => a - b);
  }

  private indexOf(ip: number): number {
    let lo = 0, hi = this.ips.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.ips[mid]!;
      if (v === ip) return mid;
      if (v < ip) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  private instructionAt(ip: number): boolean {
    return this.indexOf(ip) >= 0;
  }

  /** Index (in sortedStarts) of the function holding ip, or -1. */
  private fnIndex(ip: number): number {
    let lo = 0, hi = this.sortedStarts.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sortedStarts[mid]! <= ip) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  private decodeAt(idx: number): Instruction {
    const ip = this.ips[idx]!;
    const region = this.regions.find((r) => ip >= r.start && ip < r.end)!;
    region.decoder.position = ip - region.start;
    region.decoder.ip = BigInt(ip);
    region.decoder.decodeOut(this.instr);
    return this.instr;
  }

  /** Predecessors of instruction idx: the one before it (unless that one never falls through) and every direct jump to it. */
  private preds(idx: number): number[] {
    const out: number[] = [];
    if (idx > 0) {
      const p = idx - 1;
      const k = this.kinds[p]!;
      if (k !== K_JMP && k !== K_JMP_IND && k !== K_STOP && this.ips[p]! + this.lens[p]! === this.ips[idx]!) out.push(p);
    }
    const j = this.jumpsTo.get(this.ips[idx]!);
    if (j) out.push(...j);
    return out;
  }

  /**
   * What `reg` holds just before instruction `start`: the constants every path gives it, the
   * function entries it is still a parameter at, and the reasons of the paths that end elsewhere.
   */
  walk(start: number, reg: number): Walk {
    const out: Walk = { values: new Set(), params: new Set(), unknown: [] };
    const seen = new Set<string>();
    const work: [number, number][] = [[start, reg]];
    let steps = 0;
    while (work.length > 0) {
      const [i, r] = work.pop()!;
      const key = `${i}:${r}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (++steps > WALK_BUDGET) { out.unknown.push('too many paths to follow'); break; }
      if (i !== start && this.functionStarts.has(this.ips[i]!)) { out.params.add(`${this.ips[i]}:${r}`); continue; }
      if (i === start && this.functionStarts.has(this.ips[i]!) && this.kinds[i] !== K_SYSCALL) { out.params.add(`${this.ips[i]}:${r}`); continue; }
      const preds = this.preds(i);
      if (preds.length === 0) {
        if (this.functionStarts.has(this.ips[i]!)) out.params.add(`${this.ips[i]}:${r}`);
        else if (this.isPadding(i)) continue; // alignment nops after a jump: never executed
        else out.unknown.push(`no known way into 0x${this.ips[i]!.toString(16)} (reached by an indirect jump?)`);
        continue;
      }
      for (const p of preds) {
        const k = this.kinds[p]!;
        if (k === K_CALL || k === K_CALL_IND) {
          if (CALLEE_SAVED.has(r)) work.push([p, r]);
          else if (r === Register.RAX || r === Register.RDX) out.unknown.push(`${regName(r)} is the value returned by the call at 0x${this.ips[p]!.toString(16)}`);
          // Any other caller-saved register holds garbage after a call, so code that uses it
          // cannot be reached from there: the call does not return (abort, __stack_chk_fail, ...).
          else continue;
          continue;
        }
        if (k === K_SYSCALL && (r === Register.RAX || r === Register.RCX || r === Register.R11)) {
          out.unknown.push(`${regName(r)} is the result of the syscall at 0x${this.ips[p]!.toString(16)}`);
          continue;
        }
        const effect = this.effect(p, r);
        if (effect === 'none') work.push([p, r]);
        else if (typeof effect === 'number') {
          if (effect >= 0 && effect < MAX_SYSCALL) out.values.add(effect);
          else out.unknown.push(`0x${this.ips[p]!.toString(16)} sets ${regName(r)} to ${effect}, not a system-call number`);
        } else if ('reg' in effect) work.push([p, effect.reg]);
        else out.unknown.push(effect.why);
      }
    }
    return out;
  }

  /**
   * glibc's set*id broadcast to every thread (nptl's xidcmd) makes the system call whose number
   * is in a struct: `mov eax,[R]; ...rdi,[R+8] rsi,[R+16] rdx,[R+24]; syscall`. Its only
   * senders are the set*id functions, so the site means that family.
   */
  private isSetxidBroadcast(site: number): boolean {
    let base = Register.None;
    const seen = new Set<string>();
    for (let i = site - 1; i >= Math.max(0, site - 6); i--) {
      const ins = this.decodeAt(i);
      if (ins.mnemonic !== Mnemonic.Mov || ins.op0Kind !== OpKind.Register || ins.op1Kind !== OpKind.Memory || ins.memoryIndex !== Register.None) continue;
      const dst = RegisterExt.fullRegister(ins.op0Register);
      const b = ins.memoryBase, d = Number(ins.memoryDisplacement);
      if (base === Register.None) base = b;
      if (b !== base) break;
      seen.add(`${dst}:${d}`);
    }
    return seen.has(`${Register.RAX}:0`) && seen.has(`${Register.RDI}:8`) && seen.has(`${Register.RSI}:16`) && seen.has(`${Register.RDX}:24`);
  }

  /** Instructions reached by control flow from some function start (calls return; jumps followed). */
  private codeReached(): Uint8Array {
    const n = this.ips.length;
    const seen = new Uint8Array(n);
    const work: number[] = [];
    for (const f of this.functionStarts) { const i = this.indexOf(f); if (i >= 0) work.push(i); }
    for (const [ip] of this.importAt) { const i = this.indexOf(ip); if (i >= 0) work.push(i); }
    while (work.length > 0) {
      let i = work.pop()!;
      while (i >= 0 && i < n && !seen[i]) {
        seen[i] = 1;
        const k = this.kinds[i]!;
        if (k === K_JMP || k === K_JCC) { const t = this.indexOf(this.targets[i]!); if (t >= 0) work.push(t); }
        if (k === K_JMP || k === K_JMP_IND || k === K_STOP) break;
        if (i + 1 < n && this.ips[i]! + this.lens[i]! !== this.ips[i + 1]!) break;
        i++;
      }
    }
    return seen;
  }

  private isPadding(idx: number): boolean {
    const m = this.decodeAt(idx).mnemonic;
    return m === Mnemonic.Nop || m === Mnemonic.Int3;
  }

  /** What instruction idx does to the full register r. */
  private effect(idx: number, r: number): 'none' | number | { reg: number } | { why: string } {
    const ins = this.decodeAt(idx);
    const info = this.infoFactory.info(ins);
    let writes = false;
    for (const u of info.usedRegisters() as { register: number; access: number }[]) {
      if (u.access === OpAccess.Read || u.access === OpAccess.CondRead || u.access === OpAccess.None) continue;
      if (RegisterExt.isGPR(u.register) && RegisterExt.fullRegister(u.register) === r) { writes = true; break; }
    }
    if (!writes) return 'none';
    const mn = ins.mnemonic;
    const op0 = ins.op0Kind === OpKind.Register ? ins.op0Register : Register.None;
    const full0 = op0 !== Register.None && RegisterExt.isGPR(op0) ? RegisterExt.fullRegister(op0) : Register.None;
    const size0 = full0 !== Register.None ? RegisterExt.size(op0) : 0;
    if (full0 === r && size0 >= 4) {
      if (mn === Mnemonic.Mov && ins.opCount === 2) {
        const k1 = ins.op1Kind;
        if (k1 === OpKind.Immediate32 || k1 === OpKind.Immediate64 || k1 === OpKind.Immediate32to64 || k1 === OpKind.Immediate8to32 || k1 === OpKind.Immediate8to64) {
          const v = Number(ins.immediate(1));
          return size0 === 4 ? v >>> 0 : v;
        }
        if (k1 === OpKind.Register && RegisterExt.isGPR(ins.op1Register) && RegisterExt.size(ins.op1Register) >= 4) return { reg: RegisterExt.fullRegister(ins.op1Register) };
      }
      if ((mn === Mnemonic.Movsxd || mn === Mnemonic.Movzx || mn === Mnemonic.Movsx) && ins.op1Kind === OpKind.Register && RegisterExt.isGPR(ins.op1Register)) {
        if (RegisterExt.size(ins.op1Register) >= 4) return { reg: RegisterExt.fullRegister(ins.op1Register) };
      }
      if ((mn === Mnemonic.Xor || mn === Mnemonic.Sub) && ins.op1Kind === OpKind.Register && ins.op1Register === op0) return 0;
      // `lea eax, [rdx+N]` style arithmetic and loads are not followed: the site stays unresolved.
    }
    return { why: `0x${this.ips[idx]!.toString(16)}: ${ins.toString()} sets ${regName(r)}` };
  }

  /**
   * The summary: `importWrappers` names functions of other files that take a system-call
   * number in a register (e.g. syscall -> rdi), to be resolved at this file's calls to them.
   */
  analyze(importWrappers: ReadonlyMap<string, string>): BinarySummary {
    this.sweep();
    const syscalls = new Set<string>();
    const unresolved: (UnresolvedSite & { fn: number })[] = [];
    const wrappers = new Map<number, Set<number>>(); // function start -> registers
    const todo: [number, number][] = [];
    let sites = 0;
    const record = (site: number, w: Walk, what: string) => {
      const fn = this.fnIndex(this.ips[site]!);
      for (const v of w.values) syscalls.add(`${fn}:${v}`);
      for (const p of w.params) {
        const [f, reg] = p.split(':').map(Number) as [number, number];
        let set = wrappers.get(f);
        if (!set) wrappers.set(f, (set = new Set()));
        if (!set.has(reg)) { set.add(reg); todo.push([f, reg]); }
      }
      for (const u of new Set(w.unknown)) unresolved.push({ fn, address: `0x${this.ips[site]!.toString(16)}`, reason: `${what}: ${u}` });
    };
    const code = this.codeReached();
    const notCode: UnresolvedSite[] = [];
    for (let i = 0; i < this.kinds.length; i++) {
      if ((this.kinds[i] === K_SYSCALL || this.kinds[i] === K_INT80) && !code[i]) {
        // Bytes no function's control flow reaches that only decode as a system call: tables
        // in .text (OpenSSL's precomputed curves, say). Resolved numbers still count; an
        // unresolved one is reported apart rather than making the whole list unenforceable.
        const w = this.kinds[i] === K_SYSCALL ? this.walk(i, Register.RAX) : { values: new Set<number>(), params: new Set<string>(), unknown: ['int 0x80'] };
        if (w.unknown.length > 0 || w.params.size > 0 || w.values.size === 0) {
          notCode.push({ address: `0x${this.ips[i]!.toString(16)}`, reason: 'system-call instruction in bytes no function reaches (data in .text?)' });
          continue;
        }
      }
      if (this.kinds[i] === K_SYSCALL) {
        sites++;
        if (this.isSetxidBroadcast(i)) record(i, { values: new Set(SETXID_FAMILY), params: new Set(), unknown: [] }, 'setxid');
        else record(i, this.walk(i, Register.RAX), 'syscall');
      }
      else if (this.kinds[i] === K_INT80) unresolved.push({ fn: this.fnIndex(this.ips[i]!), address: `0x${this.ips[i]!.toString(16)}`, reason: 'int 0x80: a 32-bit system call (i386 numbers), not resolved' });
    }
    // Calls to wrappers of other files: through a PLT stub, or through the GOT.
    for (let i = 0; i < this.kinds.length; i++) {
      const k = this.kinds[i]!;
      if (k !== K_CALL && k !== K_JMP && k !== K_CALL_IND && k !== K_JMP_IND) continue;
      const name = this.importAt.get(this.targets[i]!);
      if (name === undefined || this.importAt.has(this.ips[i]!)) continue; // the stub itself is no caller
      const regN = importWrappers.get(name);
      const reg = regN === undefined ? undefined : regByName(regN);
      if (reg !== undefined) record(i, this.walk(i, reg), `call to ${name}`);
    }
    // Wrappers of this file: resolve at their callers, until no new wrapper appears.
    const exported = new Map<number, string[]>();
    for (const e of this.elf.exports) push(exported, e.value, e.name);
    const exportWrappers: { name: string; reg: string }[] = [];
    while (todo.length > 0) {
      const [f, reg] = todo.pop()!;
      const fi = this.fnIndex(f);
      const callers = [...(this.callsTo.get(f) ?? [])];
      for (const j of this.jumpsTo.get(f) ?? []) if (this.kinds[j] === K_JMP && this.fnIndex(this.ips[j]!) !== fi) callers.push(j);
      for (const c of callers) record(c, this.walk(c, reg), `call to the wrapper at 0x${f.toString(16)}`);
      for (const name of exported.get(f) ?? []) exportWrappers.push({ name, reg: regName(reg) });
      if (callers.length === 0 && !exported.has(f) && this.addressTaken.has(f)) {
        // Called through a pointer (libcap's syscall hooks, say): every indirect call in the
        // file may be a call to it, so the constants each passes in that register count.
        // An indirect call that passes no constant is taken to call something else.
        let found = 0;
        for (let i = 0; i < this.kinds.length; i++) {
          if (this.kinds[i] !== K_CALL_IND && this.kinds[i] !== K_JMP_IND) continue;
          const w = this.walk(i, reg);
          if (w.values.size === 0) continue;
          found++;
          record(i, { values: w.values, params: new Set(), unknown: [] }, 'indirect call');
        }
        if (found === 0) unresolved.push({ fn: fi, address: `0x${f.toString(16)}`, reason: `function takes the system-call number in ${regName(reg)}, is called only through pointers, and no indirect call passes a constant` });
      } else if (callers.length === 0 && !exported.has(f)) {
        unresolved.push({ fn: fi, address: `0x${f.toString(16)}`, reason: `function takes the system-call number in ${regName(reg)} and has no direct caller (called through a pointer?)` });
      } else if (exported.has(f) && !importWrappers.has(exported.get(f)![0]!)) {
        unresolved.push({ fn: fi, address: `0x${f.toString(16)}`, reason: `exported function ${exported.get(f)![0]} takes the system-call number in ${regName(reg)}: its callers in other files are not resolved` });
      }
    }
    // The call graph between functions.
    const edges = new Set<number>();
    const EDGE = 2 ** 22; // function indices stay far below this
    for (let i = 0; i < this.kinds.length; i++) {
      const k = this.kinds[i]!;
      const from = this.fnIndex(this.ips[i]!);
      if (k === K_CALL || k === K_JMP || k === K_JCC) {
        const to = this.fnIndex(this.targets[i]!);
        if (to >= 0 && to !== from && from >= 0) edges.add(from * EDGE + to);
      } else if (i + 1 < this.kinds.length && k !== K_JMP_IND && k !== K_STOP && this.ips[i]! + this.lens[i]! === this.ips[i + 1]!) {
        // Falling into the next "function" happens when its start is known only as a pointer
        // target inside a real function; a start that is a symbol or a call target follows the
        // previous function's last call only when that call does not return (so no edge).
        const next = this.ips[i + 1]!;
        const to = this.fnIndex(next);
        if (to !== from && from >= 0 && !this.namedStarts.has(next)) edges.add(from * EDGE + to);
      }
    }
    const roots = new Set<number>();
    for (const t of this.addressTaken) roots.add(this.fnIndex(t));
    roots.delete(-1);
    return {
      functions: this.sortedStarts,
      edges: [...edges].map((e) => [Math.floor(e / EDGE), e % EDGE] as [number, number]),
      roots: [...roots].sort((a, b) => a - b),
      entry: this.elf.entry ? this.fnIndex(this.elf.entry) : -1,
      exports: this.elf.exports.map((e) => [e.name, this.fnIndex(e.value)] as [string, number]).filter(([, i]) => i >= 0),
      imports: this.elf.imports,
      syscalls: [...syscalls].map((e) => e.split(':').map(Number) as [number, number]),
      wrappers: exportWrappers.sort((a, b) => a.name.localeCompare(b.name)),
      unresolved,
      notCode,
      syscallSites: sites,
      instructions: this.ips.length,
    };
  }

  free(): void {
    for (const r of this.regions) r.decoder.free();
    this.instr.free();
    this.infoFactory.free();
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v); else m.set(k, [v]);
}

/** Summary of one parsed ELF file (x86-64 only; other machines have none). */
export function summarize(elf: Elf, importWrappers: ReadonlyMap<string, string>): BinarySummary {
  const a = new BinaryAnalyzer(elf);
  try {
    return a.analyze(importWrappers);
  } finally {
    a.free();
  }
}
