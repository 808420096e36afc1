// A small ELF reader: what the loader emulation and the disassembly need (program headers,
// the dynamic section, sections, symbols and the relocations that name imported functions).
// Every offset and count is checked against the file before it is read, so a corrupt or
// hostile file is an ElfError naming it, never an exception from deep inside Buffer.
import { AnalysisError } from './errors.js';

export class ElfError extends AnalysisError {}

export interface ElfSection { name: string; type: number; flags: number; addr: number; offset: number; size: number; link: number; entsize: number }
export interface ElfSegment { type: number; flags: number; offset: number; vaddr: number; filesz: number; memsz: number }
export interface ElfSymbol { name: string; value: number; size: number; type: number; bind: number; defined: boolean }

export interface Elf {
  file: string;
  data: Buffer;
  /** 64-bit little-endian x86-64: the only kind disassembled. */
  x86_64: boolean;
  machine: number;
  class64: boolean;
  type: number; // 2 EXEC, 3 DYN
  entry: number;
  segments: ElfSegment[];
  sections: ElfSection[];
  interp: string | undefined;
  needed: string[];
  rpath: string[];
  runpath: string[];
  soname: string | undefined;
  /** Defined functions from .symtab and .dynsym (by address). */
  functions: ElfSymbol[];
  /** Functions the file exports (defined in .dynsym). */
  exports: ElfSymbol[];
  /** GOT slot address -> imported symbol name (JUMP_SLOT and GLOB_DAT relocations). */
  gotImports: Map<number, string>;
  /** Addresses stored in data by relocations (R_X86_64_RELATIVE addends, init/fini arrays). */
  relocatedPointers: number[];
  /** DT_INIT and DT_FINI, run by the loader. */
  initFini: number[];
  /** Names this file imports (undefined symbols of .dynsym). */
  imports: string[];
}

export const PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3;
export const SHT_SYMTAB = 2, SHT_RELA = 4, SHT_DYNSYM = 11, SHF_EXECINSTR = 4;
const STT_FUNC = 2, STT_GNU_IFUNC = 10;
const R_X86_64_GLOB_DAT = 6, R_X86_64_JUMP_SLOT = 7, R_X86_64_RELATIVE = 8, R_X86_64_64 = 1;
const MAX_TABLE = 4_000_000;

class Reader {
  constructor(readonly b: Buffer, readonly file: string) {}
  check(off: number, len: number, what: string): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.b.length) {
      throw new ElfError(this.file, `${what} at offset ${off} (+${len}) lies outside the file (${this.b.length} bytes)`);
    }
  }
  u8(o: number): number { this.check(o, 1, 'byte'); return this.b[o]!; }
  u16(o: number): number { this.check(o, 2, 'field'); return this.b.readUInt16LE(o); }
  u32(o: number): number { this.check(o, 4, 'field'); return this.b.readUInt32LE(o); }
  u64(o: number, what = 'field'): number {
    this.check(o, 8, what);
    const v = this.b.readBigUInt64LE(o);
    // Addresses and sizes above 2^53 are not of a real file; keep them as an impossible value.
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  i64(o: number): number { this.check(o, 8, 'field'); return Number(this.b.readBigInt64LE(o)); }
  str(o: number, limit: number): string {
    if (o < 0 || o >= this.b.length) throw new ElfError(this.file, `string at offset ${o} lies outside the file`);
    const end = this.b.indexOf(0, o);
    const stop = Math.min(end < 0 ? this.b.length : end, limit);
    return this.b.toString('utf8', o, stop);
  }
}

/** True when the buffer starts with the ELF magic. */
export function isElf(b: Buffer): boolean {
  return b.length >= 4 && b.readUInt32LE(0) === 0x464c457f;
}

export function parseElf(data: Buffer, file: string): Elf {
  const r = new Reader(data, file);
  if (!isElf(data)) throw new ElfError(file, 'not an ELF file (bad magic)');
  if (data.length < 64) throw new ElfError(file, `ELF header truncated (${data.length} bytes)`);
  const cls = data[4], endian = data[5];
  const machine = data.readUInt16LE(18);
  const base = { file, data, machine, class64: cls === 2, type: data.readUInt16LE(16) };
  const empty: Elf = { ...base, x86_64: false, entry: 0, segments: [], sections: [], interp: undefined, needed: [], rpath: [], runpath: [], soname: undefined, functions: [], exports: [], gotImports: new Map(), relocatedPointers: [], initFini: [], imports: [] };
  if (cls !== 2 || endian !== 1) return empty; // 32-bit or big-endian: known, not analysed here
  const entry = r.u64(24);
  const phoff = r.u64(32), shoff = r.u64(40);
  const phentsize = r.u16(54), phnum = r.u16(56), shentsize = r.u16(58), shnum = r.u16(60), shstrndx = r.u16(62);
  if (phnum > 0 && phentsize < 56) throw new ElfError(file, `program header entry size ${phentsize} is too small`);
  if (shnum > 0 && shentsize < 64) throw new ElfError(file, `section header entry size ${shentsize} is too small`);
  r.check(phoff, phnum * phentsize, 'program header table');
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    segments.push({ type: r.u32(o), flags: r.u32(o + 4), offset: r.u64(o + 8), vaddr: r.u64(o + 16), filesz: r.u64(o + 32), memsz: r.u64(o + 40) });
  }
  const sections: ElfSection[] = [];
  if (shoff !== 0 && shnum > 0) {
    r.check(shoff, shnum * shentsize, 'section header table');
    const raw = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      raw.push({ nameOff: r.u32(o), type: r.u32(o + 4), flags: r.u64(o + 8), addr: r.u64(o + 16), offset: r.u64(o + 24), size: r.u64(o + 32), link: r.u32(o + 40), entsize: r.u64(o + 56) });
    }
    const strtab = raw[shstrndx];
    for (const s of raw) {
      let name = '';
      if (strtab && strtab.type !== 8 && s.nameOff < strtab.size) {
        r.check(strtab.offset, strtab.size, 'section name table');
        name = r.str(strtab.offset + s.nameOff, strtab.offset + strtab.size);
      }
      sections.push({ name, type: s.type, flags: s.flags, addr: s.addr, offset: s.offset, size: s.size, link: s.link, entsize: s.entsize });
    }
  }
  const toOffset = (vaddr: number): number | undefined => {
    for (const s of segments) if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return s.offset + (vaddr - s.vaddr);
    return undefined;
  };
  let interp: string | undefined;
  const needed: string[] = [], rpath: string[] = [], runpath: string[] = [];
  let soname: string | undefined;
  const initFini: number[] = [];
  for (const s of segments) {
    if (s.type === PT_INTERP) {
      r.check(s.offset, s.filesz, 'PT_INTERP');
      interp = r.str(s.offset, s.offset + s.filesz);
    }
  }
  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (dyn) {
    r.check(dyn.offset, dyn.filesz, 'PT_DYNAMIC');
    const entries: [number, number][] = [];
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.filesz; o += 16) {
      const tag = r.u64(o);
      if (tag === 0) break;
      entries.push([tag, r.u64(o + 8)]);
    }
    const strtabAddr = entries.find(([t]) => t === 5)?.[1];
    const strsz = entries.find(([t]) => t === 10)?.[1] ?? 0;
    const strOff = strtabAddr === undefined ? undefined : toOffset(strtabAddr);
    const dstr = (v: number): string => {
      if (strOff === undefined) throw new ElfError(file, 'dynamic section has no usable DT_STRTAB');
      if (v >= strsz) throw new ElfError(file, `dynamic string offset ${v} is beyond DT_STRSZ ${strsz}`);
      return r.str(strOff + v, strOff + strsz);
    };
    for (const [tag, v] of entries) {
      if (tag === 1) needed.push(dstr(v));
      else if (tag === 14) soname = dstr(v);
      else if (tag === 15) rpath.push(...dstr(v).split(':').filter(Boolean));
      else if (tag === 29) runpath.push(...dstr(v).split(':').filter(Boolean));
      else if ((tag === 12 || tag === 13) && v !== 0) initFini.push(v);
    }
  }
  // Symbols.
  const functions: ElfSymbol[] = [];
  const exports: ElfSymbol[] = [];
  const imports = new Set<string>();
  const symtabs = new Map<number, ElfSymbol[]>();
  sections.forEach((s, idx) => {
    if (s.type !== SHT_SYMTAB && s.type !== SHT_DYNSYM) return;
    const strsec = sections[s.link];
    if (!strsec || s.entsize < 24) return;
    r.check(s.offset, s.size, `${s.name} section`);
    r.check(strsec.offset, strsec.size, `${strsec.name} section`);
    const count = Math.floor(s.size / s.entsize);
    if (count > MAX_TABLE) throw new ElfError(file, `${s.name} claims ${count} symbols`);
    const list: ElfSymbol[] = [];
    for (let i = 0; i < count; i++) {
      const o = s.offset + i * s.entsize;
      const nameOff = r.u32(o), info = r.u8(o + 4), shndx = r.u16(o + 6);
      const name = nameOff < strsec.size ? r.str(strsec.offset + nameOff, strsec.offset + strsec.size) : '';
      const sym: ElfSymbol = { name, value: r.u64(o + 8), size: r.u64(o + 16), type: info & 0xf, bind: info >> 4, defined: shndx !== 0 };
      list.push(sym);
      if (s.type === SHT_DYNSYM && !sym.defined && sym.name !== '') imports.add(sym.name);
      if (sym.defined && (sym.type === STT_FUNC || sym.type === STT_GNU_IFUNC) && sym.value !== 0) {
        functions.push(sym);
        if (s.type === SHT_DYNSYM) exports.push(sym);
      }
    }
    symtabs.set(idx, list);
  });
  // Relocations naming imports, and pointers stored in data.
  const gotImports = new Map<number, string>();
  const relocatedPointers: number[] = [];
  for (const s of sections) {
    if (s.type !== SHT_RELA || s.entsize < 24) continue;
    r.check(s.offset, s.size, `${s.name} section`);
    const syms = symtabs.get(s.link) ?? [];
    const count = Math.floor(s.size / s.entsize);
    if (count > MAX_TABLE) throw new ElfError(file, `${s.name} claims ${count} relocations`);
    for (let i = 0; i < count; i++) {
      const o = s.offset + i * s.entsize;
      const offset = r.u64(o), info = r.u64(o + 8), addend = r.i64(o + 16);
      const type = info % 2 ** 32, symIdx = Math.floor(info / 2 ** 32);
      const sym = syms[symIdx];
      if ((type === R_X86_64_JUMP_SLOT || type === R_X86_64_GLOB_DAT) && sym && sym.name) gotImports.set(offset, sym.name);
      else if (type === R_X86_64_RELATIVE) relocatedPointers.push(addend);
      else if (type === R_X86_64_64 && sym?.defined) relocatedPointers.push(sym.value + addend);
    }
  }
  return { ...base, x86_64: machine === 62, entry, segments, sections, interp, needed, rpath, runpath, soname, functions, exports, gotImports, relocatedPointers, initFini, imports: [...imports] };
}

/** Library names that appear as string constants (candidates for dlopen). */
export function dlopenNames(elf: Elf): string[] {
  const out = new Set<string>();
  const ranges = elf.sections.filter((s) => s.name === '.rodata' || s.name === '.data.rel.ro' || s.name === '.data');
  const areas = ranges.length > 0 ? ranges.map((s) => [s.offset, s.size]) : [[0, elf.data.length]];
  for (const [off, size] of areas) {
    if (off! + size! > elf.data.length) continue;
    const text = elf.data.toString('latin1', off, off! + size!);
    for (const m of text.matchAll(/(?<=\0)(lib[A-Za-z0-9_+.-]*?\.so(?:\.[0-9]+)*)\0/g)) out.add(m[1]!);
  }
  return [...out].sort();
}
