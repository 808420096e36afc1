// The agent's local control interface: a unix socket through which an operator (or the
// monitoring server's relay on this host) asks for an action on a container.
//
// Who may ask: the socket is mode 0600 in a directory of its own that must belong to the
// agent's user and let no one else in (0700), so the kernel refuses connect() to anyone but
// that user (root) before a byte is read. Node has no SO_PEERCRED, so on top of that every
// request carries a token: 32 random bytes the agent writes at start to PATH.token (0600),
// compared in constant time. A process that got hold of the socket some other way (a
// passed descriptor, a bind mount of the directory into a container) still cannot ask
// without the token; a relay that holds the token need not run as root.
//
// Protocol: one JSON line in, one JSON line out.
//   {"token": "HEX", "action": "pause|stop|kill|isolate", "container": "NAME|ID", "timeoutSeconds": N}
//   {"ok": true, "response": {...ResponseInfo}}   or   {"ok": false, "error": "..."}
import net from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ResponseInfo } from '../events/index.js';
import type { ContainerAction } from './responder.js';

export const CONTROL_ACTIONS: readonly ContainerAction[] = ['pause', 'stop', 'kill', 'isolate'];
const MAX_REQUEST = 64 * 1024;

export function tokenPathOf(socketPath: string): string {
  return `${socketPath}.token`;
}

export interface ControlRequest { action: ContainerAction; container: string; timeoutSeconds: number | undefined }

/** Reads and checks a request line; throws with what is wrong. */
export function parseRequest(line: string, token: Buffer): ControlRequest {
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch {
    throw new Error('the request is not a JSON line');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('the request must be a JSON object');
  const o = j as Record<string, unknown>;
  const given = typeof o['token'] === 'string' ? Buffer.from(o['token'], 'utf8') : Buffer.alloc(0);
  const want = Buffer.from(token.toString('hex'), 'utf8');
  if (given.length !== want.length || !timingSafeEqual(given, want)) throw new Error('bad or missing token');
  const action = o['action'];
  if (typeof action !== 'string' || !(CONTROL_ACTIONS as readonly string[]).includes(action)) throw new Error(`action must be one of ${CONTROL_ACTIONS.join(', ')}`);
  const container = o['container'];
  if (typeof container !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(container)) throw new Error('container must be a container name or id');
  const t = o['timeoutSeconds'];
  if (t !== undefined && (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 600)) throw new Error('timeoutSeconds must be a whole number from 0 to 600');
  return { action: action as ContainerAction, container, timeoutSeconds: t as number | undefined };
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** The directory must be ours and closed to others; made 0700 when missing. */
function checkDirectory(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}, not to the agent's (${uid})`);
  if ((st.mode & 0o022) !== 0) throw new Error(`${dir} can be written by others (mode ${(st.mode & 0o777).toString(8)}); make it 0700`);
}

/**
 * Whether a socket at path is served (another agent's), stale (ECONNREFUSED: its agent is
 * gone) or cannot be told (a full backlog: EAGAIN); only a stale one is taken over.
 */
function probe(path: string): Promise<'served' | 'stale' | 'unknown'> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve('served');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'stale' : 'unknown'));
  });
}

export async function startControlServer(
  path: string,
  handle: (r: ControlRequest) => Promise<ResponseInfo>,
  log: (m: string) => void,
): Promise<ControlServer> {
  checkDirectory(dirname(path));
  if (lstatSync(path, { throwIfNoEntry: false })) {
    const state = await probe(path);
    if (state !== 'stale') throw new Error(`${path} is ${state === 'served' ? 'served by another process (another agent?)' : 'there and cannot be probed'}`);
    unlinkSync(path); // a stale socket of an agent that did not stop cleanly
  }
  const token = randomBytes(32);
  const tokenPath = tokenPathOf(path);
  try { unlinkSync(tokenPath); } catch { /* none yet */ }
  const fd = openSync(tokenPath, 'wx', 0o600);
  try {
    writeSync(fd, token.toString('hex') + '\n');
  } finally {
    closeSync(fd);
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        // Nothing more is read from a caller that sends more than any request needs.
        sock.removeAllListeners('data');
        sock.pause();
        log(`control socket: refused a request longer than ${MAX_REQUEST} bytes`);
        sock.end(JSON.stringify({ ok: false, error: `request longer than ${MAX_REQUEST} bytes` }) + '\n');
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      sock.removeAllListeners('data');
      let req: ControlRequest;
      try {
        req = parseRequest(line, token);
      } catch (e) {
        log(`control socket: refused a request: ${(e as Error).message}`);
        sock.end(JSON.stringify({ ok: false, error: (e as Error).message }) + '\n');
        return;
      }
      sock.setTimeout(0);
      handle(req).then(
        (response) => sock.end(JSON.stringify({ ok: true, response }) + '\n'),
        (e: unknown) => sock.end(JSON.stringify({ ok: false, error: (e as Error).message }) + '\n'),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  const ino = lstatSync(path).ino;
  return {
    path,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Only our own socket and token are removed: another agent may have taken the path since.
      try { if (lstatSync(path).ino === ino) unlinkSync(path); } catch { /* gone */ }
      try { if (readFileSync(tokenPath, 'utf8').trim() === token.toString('hex')) unlinkSync(tokenPath); } catch { /* gone */ }
    }),
  };
}

/** The client side (vigil respond): sends one request, returns the agent's answer. */
export function requestAction(path: string, token: string, req: ControlRequest, timeoutMs = 60_000): Promise<{ ok: true; response: ResponseInfo } | { ok: false; error: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let buf = '';
    s.setEncoding('utf8');
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`no answer from ${path} within ${timeoutMs / 1000} s`)));
    s.on('connect', () => s.write(JSON.stringify({ token, action: req.action, container: req.container, timeoutSeconds: req.timeoutSeconds }) + '\n'));
    s.on('data', (c: string) => (buf += c));
    s.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'no agent control socket there (is the agent running with it on?)' : e.code === 'EACCES' ? 'permission denied (the control socket is root\'s)' : e.message;
      reject(new Error(`${path}: ${why}`));
    });
    s.on('end', () => {
      try {
        const j = JSON.parse(buf.trim()) as { ok?: unknown; response?: ResponseInfo; error?: unknown };
        if (j.ok === true && j.response) resolve({ ok: true, response: j.response });
        else resolve({ ok: false, error: typeof j.error === 'string' ? j.error : 'the agent answered without a reason' });
      } catch {
        reject(new Error(`${path}: the agent's answer is not JSON: ${buf.slice(0, 200)}`));
      }
    });
  });
}
