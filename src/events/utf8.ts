// Strings from the kernel (names, paths, argv, comm) are bytes a container chose, not
// always UTF-8. A lossy decode (every bad byte becoming U+FFFD) makes two different
// names read the same: /tmp/\xff and /tmp/\xfe would both be "/tmp/\ufffd". Here each
// byte that is not part of a valid UTF-8 sequence becomes the lone surrogate U+DC00 +
// byte (U+DC80..U+DCFF, as Python's surrogateescape does), which valid UTF-8 can never
// produce: the decode is one-to-one. JSON writes those as "\udcff"; the text lines as
// \xff (src/events/text.ts); rawBytes() gives the bytes back.
import { isUtf8 } from 'node:buffer';

/** The escape of byte b (0x80..0xff) that is not valid UTF-8 where it stands. */
const ESCAPE_BASE = 0xdc00;

/** Decodes buf[start, end) as UTF-8, escaping each invalid byte (see above). */
export function utf8(buf: Buffer, start = 0, end = buf.length): string {
  const part = buf.subarray(start, end);
  if (isUtf8(part)) return part.toString('utf8');
  let out = '';
  let i = 0;
  let runStart = 0; // start of the current run of valid bytes
  const n = part.length;
  while (i < n) {
    const b = part[i] as number;
    let len = 0;
    if (b < 0x80) len = 1;
    else if (b >= 0xc2 && b <= 0xdf) len = 2;
    else if (b >= 0xe0 && b <= 0xef) len = 3;
    else if (b >= 0xf0 && b <= 0xf4) len = 4;
    let ok = len > 0 && i + len <= n;
    if (ok && len > 1) {
      for (let k = 1; k < len; k++) if (((part[i + k] as number) & 0xc0) !== 0x80) ok = false;
      const b1 = part[i + 1] as number;
      // Overlong forms, UTF-16 surrogates and code points above U+10FFFF are not UTF-8.
      if (ok && b === 0xe0 && b1 < 0xa0) ok = false;
      if (ok && b === 0xed && b1 > 0x9f) ok = false;
      if (ok && b === 0xf0 && b1 < 0x90) ok = false;
      if (ok && b === 0xf4 && b1 > 0x8f) ok = false;
    }
    if (ok) {
      i += len;
      continue;
    }
    if (i > runStart) out += part.toString('utf8', runStart, i);
    out += String.fromCharCode(ESCAPE_BASE + b);
    i++;
    runStart = i;
  }
  if (n > runStart) out += part.toString('utf8', runStart, n);
  return out;
}

/** Is the code unit an escaped byte (see utf8())? */
export function isEscapedByte(code: number): boolean {
  return code >= 0xdc80 && code <= 0xdcff;
}

/** The bytes a string from utf8() was decoded from. */
export function rawBytes(s: string): Buffer {
  const parts: Buffer[] = [];
  let runStart = 0;
  for (let i = 0; i < s.length; i++) {
    if (!isEscapedByte(s.charCodeAt(i))) continue;
    if (i > runStart) parts.push(Buffer.from(s.slice(runStart, i), 'utf8'));
    parts.push(Buffer.from([s.charCodeAt(i) - ESCAPE_BASE]));
    runStart = i + 1;
  }
  if (runStart < s.length) parts.push(Buffer.from(s.slice(runStart), 'utf8'));
  return Buffer.concat(parts);
}
