// A tar reader over a Buffer held in memory: nothing is extracted to disk, so a hostile
// archive cannot write anywhere. It reads ustar, GNU (long names, long links) and pax
// (path, linkpath, size) headers; every header's checksum is checked and every size is
// bounded by what is left in the buffer, so a truncated or lying archive is an error that
// names the archive and the entry, never a read past the end.
import { AnalysisError } from './errors.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'sparse' | 'other';

export interface TarEntry {
  /** The name as stored (no normalisation here: the layer code decides what a name means). */
  name: string;
  type: TarEntryType;
  mode: number;
  size: number;
  linkname: string;
  /** The entry's bytes, a view into the archive (no copy). */
  data: Buffer;
}

const BLOCK = 512;

function cstring(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

function octal(buf: Buffer, start: number, len: number, archive: string, entry: string, field: string): number {
  // GNU base-256: the high bit of the first byte set, the rest big-endian binary.
  if (buf[start]! & 0x80) {
    let v = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + buf[start + i]!;
      if (v > Number.MAX_SAFE_INTEGER) throw new AnalysisError(archive, `entry ${entry}: ${field} is too large`);
    }
    return v;
  }
  const s = buf.toString('latin1', start, start + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new AnalysisError(archive, `entry ${entry}: ${field} is not an octal number (${JSON.stringify(s)})`);
  return parseInt(s, 8);
}

function typeOf(flag: string): TarEntryType {
  switch (flag) {
    case '0': case '\0': case '7': return 'file';
    case '5': return 'dir';
    case '2': return 'symlink';
    case '1': return 'hardlink';
    case '3': return 'char';
    case '4': return 'block';
    case '6': return 'fifo';
    case 'S': return 'sparse';
    default: return 'other';
  }
}

/** pax extended header records: "LEN key=value\n". */
function paxRecords(data: Buffer, archive: string): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(data.toString('latin1', pos, sp), 10);
    if (!Number.isFinite(len) || len <= sp - pos || pos + len > data.length) throw new AnalysisError(archive, `bad pax header record at offset ${pos}`);
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/**
 * Reads every entry of the archive `buf` (named `archive` in errors). Stops at the two zero
 * blocks that end an archive, or at its end; anything shorter than it claims is an error.
 */
export function* readTar(buf: Buffer, archive: string): Generator<TarEntry> {
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  let global = new Map<string, string>();
  let entries = 0;
  while (pos + BLOCK <= buf.length) {
    const header = buf.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) return; // end of archive
    const rawName = cstring(header, 0, 100);
    const where = `${rawName || '(unnamed)'} (header at offset ${pos})`;
    // The checksum is the sum of the header bytes with its own field counted as spaces.
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    const stored = octal(header, 148, 8, archive, where, 'checksum');
    if (stored !== sum) throw new AnalysisError(archive, `entry ${where}: header checksum mismatch (not a tar archive, or corrupt)`);
    const size = octal(header, 124, 12, archive, where, 'size');
    const flag = String.fromCharCode(header[156]!);
    const dataStart = pos + BLOCK;
    const paxSize = pax.get('size') ?? global.get('size');
    const realSize = paxSize !== undefined && typeOf(flag) !== 'other' ? Number(paxSize) : size;
    if (!Number.isSafeInteger(realSize) || realSize < 0) throw new AnalysisError(archive, `entry ${where}: bad size ${paxSize}`);
    // Sparse and special entries store less than their size; their data is only `size` bytes.
    const stored_ = flag === 'S' || ['3', '4', '5', '6'].includes(flag) ? size : realSize;
    if (dataStart + stored_ > buf.length) {
      throw new AnalysisError(archive, `entry ${where}: truncated (needs ${stored_} bytes of data, ${Math.max(0, buf.length - dataStart)} left)`);
    }
    const data = buf.subarray(dataStart, dataStart + stored_);
    pos = dataStart + Math.ceil(stored_ / BLOCK) * BLOCK;
    if (++entries > 5_000_000) throw new AnalysisError(archive, 'more than 5,000,000 entries');
    if (flag === 'L') { longName = cstring(data, 0, data.length); continue; }
    if (flag === 'K') { longLink = cstring(data, 0, data.length); continue; }
    if (flag === 'x') { pax = paxRecords(data, archive); continue; }
    if (flag === 'g') { global = paxRecords(data, archive); continue; }
    const magic = header.toString('latin1', 257, 263);
    const prefix = magic.startsWith('ustar') ? cstring(header, 345, 155) : '';
    const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
    const linkname = pax.get('linkpath') ?? longLink ?? cstring(header, 157, 100);
    const mode = octal(header, 100, 8, archive, where, 'mode');
    longName = longLink = undefined;
    pax = new Map();
    yield { name, type: typeOf(flag), mode, size: realSize, linkname, data };
  }
  if (pos < buf.length && buf.length - pos < BLOCK) throw new AnalysisError(archive, `truncated: ${buf.length - pos} stray bytes after the last entry at offset ${pos}`);
}

/** True when `buf` starts like a tar archive (a header whose checksum is right). */
export function looksLikeTar(buf: Buffer): boolean {
  if (buf.length < BLOCK) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : buf[i]!;
  const s = buf.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim();
  return /^[0-7]+$/.test(s) && parseInt(s, 8) === sum;
}
