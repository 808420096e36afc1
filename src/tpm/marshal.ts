// Big-endian byte readers and writers for TPM 2.0 structures. The reader checks every
// length against what is left, so a malformed buffer ends in a TpmFormatError and never
// in a RangeError, an out-of-bounds slice or an endless loop.
import { TpmFormatError } from './errors.js';

export class TpmWriter {
  private readonly parts: Buffer[] = [];
  private length = 0;

  private push(b: Buffer): this { this.parts.push(b); this.length += b.length; return this; }

  u8(v: number): this { const b = Buffer.alloc(1); b.writeUInt8(v & 0xff); return this.push(b); }
  u16(v: number): this { const b = Buffer.alloc(2); b.writeUInt16BE(v & 0xffff); return this.push(b); }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return this.push(b); }
  i32(v: number): this { const b = Buffer.alloc(4); b.writeInt32BE(v | 0); return this.push(b); }
  u64(v: bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return this.push(b); }
  bytes(b: Uint8Array): this { return this.push(Buffer.from(b)); }
  /** A TPM2B: a 16-bit size followed by that many bytes. */
  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError(`TPM2B of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).bytes(b);
  }
  /** A TPM2B that wraps a structure (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, ...). */
  sized(write: (w: TpmWriter) => void): this {
    const inner = new TpmWriter();
    write(inner);
    return this.tpm2b(inner.toBuffer());
  }
  get size(): number { return this.length; }
  toBuffer(): Buffer { return Buffer.concat(this.parts, this.length); }
}

export class TpmReader {
  private pos = 0;
  /** `structure` names what is being read, for error messages. */
  constructor(private readonly buf: Buffer, readonly structure: string, private readonly base = 0) {}

  get offset(): number { return this.pos; }
  get remaining(): number { return this.buf.length - this.pos; }

  fail(problem: string): never { throw new TpmFormatError(this.structure, this.base + this.pos, problem); }

  private need(n: number, field: string): void {
    if (n > this.remaining) this.fail(`${field} needs ${n} bytes but only ${this.remaining} remain`);
  }
  u8(field: string): number { this.need(1, field); const v = this.buf.readUInt8(this.pos); this.pos += 1; return v; }
  u16(field: string): number { this.need(2, field); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v; }
  u32(field: string): number { this.need(4, field); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  i32(field: string): number { this.need(4, field); const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  u64(field: string): bigint { this.need(8, field); const v = this.buf.readBigUInt64BE(this.pos); this.pos += 8; return v; }
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  /** A TPM2B; `max` is the largest size the specification allows for this field. */
  tpm2b(field: string, max = 0xffff): Buffer {
    const size = this.u16(`${field}.size`);
    if (size > max) this.fail(`${field}.size ${size} exceeds the maximum ${max}`);
    return this.bytes(size, field);
  }
  /** A TPM2B wrapping a structure: the inner reader must consume exactly `size` bytes. */
  sized<T>(field: string, read: (r: TpmReader) => T, allowEmpty = false): T | undefined {
    const size = this.u16(`${field}.size`);
    if (size === 0) {
      if (allowEmpty) return undefined;
      this.fail(`${field} is empty`);
    }
    const inner = this.sub(size, field);
    const v = read(inner);
    inner.end(field);
    return v;
  }
  /** A reader over the next n bytes, with offsets reported relative to this buffer. */
  sub(n: number, field: string): TpmReader {
    this.need(n, field);
    const r = new TpmReader(this.buf.subarray(this.pos, this.pos + n), this.structure, this.base + this.pos);
    this.pos += n;
    return r;
  }
  /** A list count, bounded both by the specification's limit and by the bytes left. */
  count(field: string, max: number, minElementSize: number): number {
    const n = this.u32(field);
    if (n > max) this.fail(`${field} ${n} exceeds the maximum ${max}`);
    if (n * minElementSize > this.remaining) this.fail(`${field} ${n} cannot fit in the ${this.remaining} bytes left`);
    return n;
  }
  /** The bytes read since `start` (an earlier `offset`), e.g. to hash a structure as sent. */
  since(start: number): Buffer { return Buffer.from(this.buf.subarray(start, this.pos)); }
  rest(): Buffer { return this.bytes(this.remaining, 'rest'); }
  end(what = this.structure): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} unexpected bytes after ${what}`);
  }
}
