// Socket addresses as text.
import { ADDRESS_FAMILIES } from './constants.js';

export function ipv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export function ipv6(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${ipv4(b.subarray(12, 16))}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Collapse the longest run of zero groups, as RFC 5952 says.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export interface DecodedSockaddr { family: string; address: string; port?: number; path?: string }

/** A struct sockaddr copied from user memory. */
export function decodeSockaddr(b: Buffer): DecodedSockaddr | undefined {
  if (b.length < 2) return undefined;
  const family = b.readUInt16LE(0);
  const name = ADDRESS_FAMILIES[family] ?? `AF_${family}`;
  if (family === 2 && b.length >= 8) return { family: name, address: ipv4(b.subarray(4, 8)), port: b.readUInt16BE(2) };
  if (family === 10 && b.length >= 24) return { family: name, address: ipv6(b.subarray(8, 24)), port: b.readUInt16BE(2) };
  if (family === 1) {
    const raw = b.subarray(2);
    if (raw.length > 0 && raw[0] === 0) {
      const end = raw.indexOf(0, 1);
      return { family: name, address: '@' + raw.subarray(1, end < 0 ? raw.length : end).toString('utf8'), path: '' };
    }
    const end = raw.indexOf(0);
    const path = raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
    return { family: name, address: path, path };
  }
  return { family: name, address: '' };
}
