// A reverse-shell catcher in a network namespace of the test's own, joined to this host
// by a veth pair (containers on Docker's bridge reach it through the host, masqueraded).
// On every connection it sends commands, as an attacker would, and records every byte
// that comes back; nothing is sent to any other address.
import { spawn, type ChildProcess } from 'node:child_process';
import { createVethNamespace } from '../helpers/netns.js';

export interface Catch {
  /** Bytes the shell sent back, as text. */
  got: string;
  /** ms from the connection to its close. */
  openMs: number;
}

export interface Catcher {
  address: string;
  port: number;
  /** The connections closed so far. */
  catches(): Catch[];
  /** Waits until n connections have closed (bounded). */
  waitFor(n: number, timeoutMs?: number): Promise<Catch[]>;
  close(): void;
}

// The listener's program (run by node inside the namespace): one JSON line per closed connection.
const PROGRAM = `
const net = require('net');
const [address, port, commands] = process.argv.slice(1);
net.createServer((s) => {
  const t0 = Date.now();
  let got = '';
  s.setEncoding('latin1');
  s.on('error', () => {});
  s.on('data', (d) => { got += d; });
  s.on('close', () => process.stdout.write(JSON.stringify({ got, openMs: Date.now() - t0 }) + '\\n'));
  s.write(commands);
  // The connection ends on its own when the shell dies; an unkilled shell is ended after 5 s.
  setTimeout(() => s.destroy(), 5000).unref();
}).listen(Number(port), address, () => process.stderr.write('listening\\n'));
`;

export async function createCatcher(subnet: number, commands: string): Promise<Catcher> {
  const tag = `${process.pid % 10000}${subnet}`;
  const name = `vigil-r${tag}`;
  const ns = createVethNamespace(name, `vrh${tag}`, `vrn${tag}`, `10.233.${subnet}`);
  const address = ns.address;
  const port = 4444;
  let listener: ChildProcess | undefined;
  const close = () => {
    listener?.kill('SIGKILL');
    ns.close();
  };
  try {
    const proc = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', PROGRAM, address, String(port), commands], { stdio: ['ignore', 'pipe', 'pipe'] });
    listener = proc;
    const caught: Catch[] = [];
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        caught.push(JSON.parse(buf.slice(0, nl)) as Catch);
        buf = buf.slice(nl + 1);
      }
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the catcher in the test namespace did not start')), 10_000);
      proc.stderr!.on('data', () => { clearTimeout(t); resolve(); });
      proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`the catcher exited with ${code}`)); });
    });
    proc.unref();
    (proc.stdout as unknown as { unref(): void }).unref();
    (proc.stderr as unknown as { unref(): void }).unref();
    return {
      address,
      port,
      catches: () => [...caught],
      waitFor: async (n, timeoutMs = 30_000) => {
        const end = Date.now() + timeoutMs;
        while (caught.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        return [...caught];
      },
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}
