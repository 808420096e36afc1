// A minimal ustar writer for building test images (and broken ones) byte by byte.
import { createHash } from 'node:crypto';

export interface Entry {
  name: string;
  type?: '0' | '1' | '2' | '3' | '5' | 'S';
  data?: Buffer;
  linkname?: string;
  mode?: number;
  /** The size written in the header, when it should lie about the data. */
  claimedSize?: number;
}

function header(e: Entry): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name.slice(0, 100), 0, 'utf8');
  h.write(((e.mode ?? 0o755) & 0o7777).toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  const size = e.claimedSize ?? e.data?.length ?? 0;
  if (size > 0o77777777777) {
    // GNU base-256 for sizes that do not fit in 11 octal digits.
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) { h[i] = Number(v & 0xffn); v >>= 8n; }
  } else h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname) h.write(e.linkname, 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

export function tar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e));
    const d = e.data ?? Buffer.alloc(0);
    if (d.length > 0) {
      parts.push(d);
      if (d.length % 512) parts.push(Buffer.alloc(512 - (d.length % 512)));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A `docker save` archive of one image with these layers and this config. */
export function dockerSave(layers: Buffer[], config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[] }): Buffer {
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin:/bin'], ...config }, rootfs: { type: 'layers', diff_ids: layers.map((l) => 'sha256:' + createHash('sha256').update(l).digest('hex')) } }));
  const cfgName = createHash('sha256').update(cfg).digest('hex') + '.json';
  const layerNames = layers.map((_, i) => `layer${i}/layer.tar`);
  const manifest = Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: ['vigil-test/fixture:1'], Layers: layerNames }]));
  return tar([
    { name: cfgName, data: cfg, mode: 0o644 },
    ...layers.map((l, i) => ({ name: layerNames[i]!, data: l, mode: 0o644 })),
    { name: 'manifest.json', data: manifest, mode: 0o644 },
  ]);
}
