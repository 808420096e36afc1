// Ways to reach a TPM. A transport moves one command buffer to the TPM and brings one
// complete response buffer back; it knows the framing (10-byte header with the total
// size) but nothing about what the command means.
import net from 'node:net';
import { open, type FileHandle } from 'node:fs/promises';
import { MAX_RESPONSE_SIZE } from './constants.js';
import { TpmControlError, TpmFormatError, TpmTransportError } from './errors.js';

export interface TpmTransport {
  /** Sends one marshalled command and resolves with the whole response. */
  send(command: Buffer): Promise<Buffer>;
  /** Releases the connection; a later send may reconnect (where the transport can). */
  close(): Promise<void>;
  /** Where this transport goes, for messages. */
  readonly description: string;
}

/** Checks the size field of a response header and says how long the response is. */
function responseLength(header: Buffer): number {
  const size = header.readUInt32BE(2);
  if (size < 10) throw new TpmFormatError('TPM response header', 2, `responseSize ${size} is smaller than the 10-byte header`);
  if (size > MAX_RESPONSE_SIZE) throw new TpmFormatError('TPM response header', 2, `responseSize ${size} exceeds ${MAX_RESPONSE_SIZE}`);
  return size;
}

/** Runs calls one after another: a TPM interface carries one command at a time. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * Where swtpm's data channel is: a unix socket (`path`, what the BMC uses: only the
 * state directory's owner can reach it) or a TCP port (`host`/`port`, for tpm2-tools in
 * tests: TSS 3.2's swtpm TCTI speaks TCP only).
 */
export interface SwtpmTcpOptions { host?: string; port?: number; path?: string; timeoutMs?: number }
export type SwtpmSocketOptions = SwtpmTcpOptions;

/**
 * swtpm's data channel: raw TPM command and response bytes on a stream. swtpm serves
 * one client at a time, so `close()` lets another program (tpm2-tools, say) in; the next
 * `send` reconnects. TPM state (loaded objects, sessions) survives reconnects.
 */
export class SwtpmTcpTransport implements TpmTransport {
  readonly description: string;
  private socket: net.Socket | undefined;
  private readonly queue = new SerialQueue();
  private readonly connectTo: net.NetConnectOpts;
  private readonly hint: string;
  private readonly timeoutMs: number;

  constructor(options: SwtpmTcpOptions) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    if (options.path !== undefined) {
      this.connectTo = { path: options.path };
      this.description = `swtpm at unix socket ${options.path}`;
      this.hint = `--server type=unixio,path=${options.path}`;
    } else {
      if (options.port === undefined) throw new TpmTransportError('an swtpm transport needs a unix socket path or a TCP port');
      const host = options.host ?? '127.0.0.1';
      this.connectTo = { host, port: options.port };
      this.description = `swtpm at ${host}:${options.port}`;
      this.hint = `--server type=tcp,port=${options.port}`;
    }
  }

  private connect(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const s = net.createConnection(this.connectTo);
      if (!('path' in this.connectTo)) s.setNoDelay(true);
      const onError = (err: Error) => reject(new TpmTransportError(`cannot connect to ${this.description}: ${err.message}; is swtpm running with ${this.hint}?`, { cause: err }));
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        s.on('error', () => { /* reported by the pending exchange through 'close' */ });
        this.socket = s;
        resolve(s);
      });
    });
  }

  send(command: Buffer): Promise<Buffer> {
    return this.queue.run(async () => {
      const s = await this.connect();
      try {
        return await exchange(s, command, this.timeoutMs, this.description);
      } catch (e) {
        // After any failure the stream position is unknown: start clean next time.
        s.destroy();
        this.socket = undefined;
        throw e;
      }
    });
  }

  close(): Promise<void> {
    return this.queue.run(async () => {
      const s = this.socket;
      this.socket = undefined;
      if (!s || s.destroyed) return;
      await new Promise<void>((resolve) => { s.once('close', () => resolve()); s.end(); setTimeout(() => { s.destroy(); resolve(); }, 1000).unref(); });
    });
  }
}

function exchange(s: net.Socket, command: Buffer, timeoutMs: number, where: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let want = -1;
    const cleanup = () => { clearTimeout(timer); s.off('data', onData); s.off('close', onClose); };
    const fail = (e: Error) => { cleanup(); reject(e); };
    const onData = (d: Buffer) => {
      chunks.push(d); have += d.length;
      try {
        if (want < 0 && have >= 6) want = responseLength(Buffer.concat(chunks, have));
      } catch (e) { fail(e as Error); return; }
      if (want >= 0 && have >= want) {
        cleanup();
        const all = Buffer.concat(chunks, have);
        if (have > want) { reject(new TpmFormatError('TPM response', want, `${have - want} bytes beyond the announced responseSize`)); return; }
        resolve(all);
      }
    };
    const onClose = () => fail(new TpmTransportError(`${where} closed the connection after ${have} of ${want < 0 ? 'an unknown number of' : want} response bytes`));
    const timer = setTimeout(() => fail(new TpmTransportError(`${where} did not answer within ${timeoutMs} ms (${have} bytes received)`)), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
    s.write(command);
  });
}

/** swtpm control-channel commands (swtpm's ioctl numbering, used on its ctrl socket too). */
export const SwtpmControlCommand = { GET_CAPABILITY: 1, INIT: 2, SHUTDOWN: 3, GET_TPMESTABLISHED: 4, SET_LOCALITY: 5, CANCEL_TPM_CMD: 9, STORE_VOLATILE: 10, STOP: 14 } as const;

/** The swtpm transport under the name that says what it is (TCP or unix socket). */
export const SwtpmSocketTransport = SwtpmTcpTransport;

/**
 * swtpm's control channel (`--ctrl type=unixio,path=P` or `type=tcp,port=P`): power the
 * TPM on (CMD_INIT, the equivalent of _TPM_Init), pick the locality commands come from,
 * shut swtpm down. One connection per command keeps it simple; these are rare.
 * `endpoint` is a TCP port (on `host`) or a unix socket path.
 */
export class SwtpmControl {
  private readonly where: string;
  private readonly connectTo: net.NetConnectOpts;
  constructor(endpoint: number | string, host = '127.0.0.1', private readonly timeoutMs = 10_000) {
    this.connectTo = typeof endpoint === 'string' ? { path: endpoint } : { host, port: endpoint };
    this.where = typeof endpoint === 'string' ? endpoint : `${host}:${endpoint}`;
  }

  private async call(name: string, code: number, payload: Buffer = Buffer.alloc(0)): Promise<void> {
    const msg = Buffer.alloc(4 + payload.length);
    msg.writeUInt32BE(code, 0);
    payload.copy(msg, 4);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const s = net.createConnection(this.connectTo);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => { s.destroy(); reject(new TpmTransportError(`swtpm control channel ${this.where} did not answer ${name} within ${this.timeoutMs} ms`)); }, this.timeoutMs);
      s.on('error', (e) => { clearTimeout(timer); reject(new TpmTransportError(`swtpm control channel ${this.where}: ${e.message}`, { cause: e })); });
      s.on('connect', () => s.write(msg));
      s.on('data', (d) => {
        chunks.push(d);
        if (Buffer.concat(chunks).length >= 4) { clearTimeout(timer); s.destroy(); resolve(Buffer.concat(chunks)); }
      });
      s.on('close', () => { clearTimeout(timer); if (Buffer.concat(chunks).length < 4) reject(new TpmTransportError(`swtpm control channel closed before answering ${name}`)); });
    });
    const result = answer.readUInt32BE(0);
    if (result !== 0) throw new TpmControlError(name, result);
  }

  /** _TPM_Init. `deleteVolatile` drops saved volatile state (swtpm's PTM_INIT_FLAG_DELETE_VOLATILE). */
  init(deleteVolatile = false): Promise<void> {
    const p = Buffer.alloc(4); p.writeUInt32BE(deleteVolatile ? 1 : 0);
    return this.call('CMD_INIT', SwtpmControlCommand.INIT, p);
  }
  setLocality(locality: number): Promise<void> {
    return this.call('CMD_SET_LOCALITY', SwtpmControlCommand.SET_LOCALITY, Buffer.from([locality & 0xff]));
  }
  /** Makes swtpm save its state and exit. */
  shutdown(): Promise<void> { return this.call('CMD_SHUTDOWN', SwtpmControlCommand.SHUTDOWN); }
}

/**
 * A TPM character device. `/dev/tpmrm0` is the kernel's resource manager: transient
 * objects and sessions are swapped per open file, so this client may share the TPM.
 */
export class DeviceTransport implements TpmTransport {
  readonly description: string;
  private handle: FileHandle | undefined;
  private readonly queue = new SerialQueue();
  constructor(private readonly path = '/dev/tpmrm0') { this.description = `TPM device ${path}`; }

  send(command: Buffer): Promise<Buffer> {
    return this.queue.run(async () => {
      try {
        this.handle ??= await open(this.path, 'r+');
        await this.handle.write(command, 0, command.length);
        const buf = Buffer.alloc(MAX_RESPONSE_SIZE);
        const { bytesRead } = await this.handle.read(buf, 0, buf.length, null);
        if (bytesRead < 10) throw new TpmFormatError('TPM response header', 0, `device returned ${bytesRead} bytes, fewer than a header`);
        const want = responseLength(buf);
        if (want !== bytesRead) throw new TpmFormatError('TPM response', 2, `responseSize ${want} but the device returned ${bytesRead} bytes`);
        return Buffer.from(buf.subarray(0, bytesRead));
      } catch (e) {
        if (e instanceof TpmFormatError) throw e;
        throw new TpmTransportError(`${this.description}: ${(e as Error).message}`, { cause: e });
      }
    });
  }

  close(): Promise<void> {
    return this.queue.run(async () => { const h = this.handle; this.handle = undefined; await h?.close(); });
  }
}
