// Opens an image from one of its three forms and returns its config and layers, all in
// memory: a local Docker image (exported through the Engine API's /images/NAME/get, the
// same unix socket src/containers/docker.ts talks to), a `docker save` archive, or an OCI
// image layout (a directory, or a tar of one). Layers are decompressed in memory with a
// bound on their size, never extracted.
import http from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AnalysisError } from './errors.js';
import { looksLikeTar, readTar } from './tar.js';

export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
}

export interface LoadedImage {
  /** The image id: the sha256 digest of its config, as Docker shows it. */
  id: string;
  /** What the user named (a reference, or a path). */
  ref: string;
  config: ImageConfig;
  /** Uncompressed layer tars, bottom first, each with a name for messages. */
  layers: { name: string; tar: Buffer }[];
}

export interface LoadOptions {
  dockerSocket?: string;
  /** Upper bound of an export or a decompressed layer, bytes. */
  maxBytes?: number;
  /** Called with the bytes received so far while an image is exported. */
  onProgress?: (what: string, bytes: number) => void;
}

// An export or a decompressed layer larger than this is refused (a gzip bomb costs at most this
// much memory); LoadOptions.maxBytes lowers it for the agent.
const DEFAULT_MAX = 2 * 1024 * 1024 * 1024;

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function parseJson(data: Buffer, file: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new AnalysisError(file, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new AnalysisError(file, 'not a JSON object');
  return j as Record<string, unknown>;
}

function configOf(raw: Buffer, file: string): ImageConfig {
  const j = parseJson(raw, file);
  const c = (typeof j['config'] === 'object' && j['config'] !== null ? j['config'] : {}) as Record<string, unknown>;
  return {
    entrypoint: strings(c['Entrypoint']),
    cmd: strings(c['Cmd']),
    env: strings(c['Env']),
    workingDir: typeof c['WorkingDir'] === 'string' ? c['WorkingDir'] : '',
    user: typeof c['User'] === 'string' ? c['User'] : '',
  };
}

/** A layer blob as an uncompressed tar. */
export function decompressLayer(blob: Buffer, name: string, maxBytes = DEFAULT_MAX): Buffer {
  if (blob.length >= 2 && blob[0] === 0x1f && blob[1] === 0x8b) {
    try {
      return gunzipSync(blob, { maxOutputLength: maxBytes });
    } catch (e) {
      throw new AnalysisError(name, `gzip layer cannot be decompressed: ${(e as Error).message}`);
    }
  }
  if (blob.length >= 4 && blob.readUInt32LE(0) === 0xfd2fb528) throw new AnalysisError(name, 'zstd-compressed layers are not supported yet (re-export the image with gzip or uncompressed layers)');
  if (blob.length === 0 || looksLikeTar(blob) || blob.every((b) => b === 0)) return blob;
  throw new AnalysisError(name, 'layer is neither a tar archive nor gzip-compressed');
}

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** The files of an archive by normalised name ("manifest.json", "blobs/sha256/…"). */
function archiveFiles(buf: Buffer, archive: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const links = new Map<string, string>();
  for (const e of readTar(buf, archive)) {
    const name = e.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    if (e.type === 'file') files.set(name, e.data);
    // docker save links identical layers to one another; only links inside the archive count.
    else if (e.type === 'symlink' || e.type === 'hardlink') links.set(name, e.linkname);
  }
  for (const [name, target] of links) {
    const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/') + 1) : '';
    const t = target.startsWith('../') ? target.slice(3) : target.startsWith('/') ? target.slice(1) : dir + target;
    const data = files.get(t) ?? files.get(target);
    if (data) files.set(name, data);
  }
  return files;
}

interface BlobStore {
  name: string;
  get(path: string): Buffer | undefined;
}

/** Follows an OCI index to the linux/amd64 image manifest. */
function ociImage(store: BlobStore, ref: string, maxBytes: number): LoadedImage {
  const blob = (digest: unknown, what: string): Buffer => {
    if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new AnalysisError(store.name, `${what}: bad digest ${JSON.stringify(digest)}`);
    const data = store.get(`blobs/sha256/${digest.slice(7)}`);
    if (!data) throw new AnalysisError(store.name, `${what}: blob ${digest} is missing`);
    return data;
  };
  const indexRaw = store.get('index.json');
  if (!indexRaw) throw new AnalysisError(store.name, 'no index.json: not an OCI image layout');
  let doc = parseJson(indexRaw, `${store.name}:index.json`);
  for (let depth = 0; depth < 4 && Array.isArray(doc['manifests']); depth++) {
    const ms = (doc['manifests'] as unknown[]).filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null);
    const pick = ms.find((m) => {
      const p = m['platform'] as Record<string, unknown> | undefined;
      return p?.['architecture'] === 'amd64' && (p['os'] === undefined || p['os'] === 'linux');
    }) ?? ms.find((m) => !m['platform'] || (m['platform'] as Record<string, unknown>)['architecture'] !== 'unknown');
    if (!pick) throw new AnalysisError(store.name, 'the index lists no linux/amd64 manifest');
    doc = parseJson(blob(pick['digest'], 'manifest'), `${store.name}:${String(pick['digest'])}`);
  }
  const cfgDesc = doc['config'] as Record<string, unknown> | undefined;
  const cfgRaw = blob(cfgDesc?.['digest'], 'config');
  const layers = (Array.isArray(doc['layers']) ? doc['layers'] : []) as Record<string, unknown>[];
  return {
    id: sha256(cfgRaw),
    ref,
    config: configOf(cfgRaw, `${store.name}:config`),
    layers: layers.map((l, i) => {
      const name = `${store.name}:layer ${i + 1} (${String(l['digest']).slice(0, 19)})`;
      return { name, tar: decompressLayer(blob(l['digest'], `layer ${i + 1}`), name, maxBytes) };
    }),
  };
}

/** A `docker save` archive (or an OCI layout in a tar), already in memory. */
export function imageFromArchive(buf: Buffer, name: string, ref = name, maxBytes = DEFAULT_MAX): LoadedImage {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = decompressLayer(buf, name, maxBytes);
  if (!looksLikeTar(buf)) throw new AnalysisError(name, 'not a tar archive (expected `docker save` output or an OCI layout)');
  const files = archiveFiles(buf, name);
  const manifest = files.get('manifest.json');
  if (manifest) {
    let list: unknown;
    try {
      list = JSON.parse(manifest.toString('utf8'));
    } catch (e) {
      throw new AnalysisError(`${name}:manifest.json`, `not valid JSON: ${(e as Error).message}`);
    }
    const first = Array.isArray(list) ? (list[0] as Record<string, unknown> | undefined) : undefined;
    if (!first || typeof first['Config'] !== 'string') throw new AnalysisError(`${name}:manifest.json`, 'lists no image');
    const cfgRaw = files.get(first['Config']);
    if (!cfgRaw) throw new AnalysisError(name, `config ${first['Config']} named by manifest.json is missing`);
    return {
      id: sha256(cfgRaw),
      ref,
      config: configOf(cfgRaw, `${name}:${first['Config']}`),
      layers: strings(first['Layers']).map((l) => {
        const data = files.get(l);
        if (!data) throw new AnalysisError(name, `layer ${l} named by manifest.json is missing`);
        return { name: `${name}:${l}`, tar: decompressLayer(data, `${name}:${l}`, maxBytes) };
      }),
    };
  }
  if (files.has('index.json')) return ociImage({ name, get: (p) => files.get(p) }, ref, maxBytes);
  throw new AnalysisError(name, 'has neither manifest.json (docker save) nor index.json (OCI layout)');
}

/** Exports a local image through the Docker Engine API into memory. */
function dockerExport(ref: string, socketPath: string, maxBytes: number, onProgress?: (what: string, bytes: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const path = `/images/${encodeURIComponent(ref)}/get`;
    const req = http.get({ socketPath, path, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) {
          req.destroy(new AnalysisError(ref, `export is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
        onProgress?.(`exporting ${ref}`, total);
      });
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if ((res.statusCode ?? 500) >= 400) {
          let msg = body.toString('utf8').trim();
          try {
            msg = String((JSON.parse(msg) as { message?: unknown }).message ?? msg);
          } catch {
            // not JSON: keep the text
          }
          reject(new AnalysisError(ref, `Docker cannot export this image: ${msg}`));
          return;
        }
        resolve(body);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new AnalysisError(ref, 'Docker export timed out after 120 s')));
    req.on('error', (e) => reject(e instanceof AnalysisError ? e : new AnalysisError(ref, `Docker Engine API at ${socketPath}: ${e.message}`)));
  });
}

/** Opens IMAGE: a path (directory = OCI layout, file = archive) or a local Docker image. */
export async function loadImage(ref: string, options: LoadOptions = {}): Promise<LoadedImage> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX;
  if (existsSync(ref)) {
    const st = statSync(ref);
    if (st.isDirectory()) {
      if (!existsSync(join(ref, 'index.json'))) throw new AnalysisError(ref, 'directory has no index.json: not an OCI image layout');
      const readBlob = (p: string): Buffer | undefined => {
        // Only names of the form the layout defines are opened, so index.json cannot point outside it.
        if (p !== 'index.json' && !/^blobs\/sha256\/[0-9a-f]{64}$/.test(p)) return undefined;
        const full = join(ref, p);
        if (!existsSync(full)) return undefined;
        const s = statSync(full);
        if (!s.isFile()) return undefined;
        if (s.size > maxBytes) throw new AnalysisError(full, `blob of ${s.size} bytes is larger than the limit`);
        return readFileSync(full);
      };
      return ociImage({ name: ref, get: readBlob }, ref, maxBytes);
    }
    if (st.size > maxBytes) throw new AnalysisError(ref, `archive of ${st.size} bytes is larger than the limit of ${maxBytes}`);
    return imageFromArchive(readFileSync(ref), ref, ref, maxBytes);
  }
  const socket = options.dockerSocket ?? '/var/run/docker.sock';
  const buf = await dockerExport(ref, socket, maxBytes, options.onProgress);
  return imageFromArchive(buf, `docker image ${ref}`, ref, maxBytes);
}
