// A test host of our own: a network namespace joined to this host by a veth pair,
// with a TCP listener inside. Containers on Docker's bridge reach it through the host.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface TestHost {
  name: string;
  address: string;        // the namespace's address
  listenPort: number;     // a port with a listener
  closedPort: number;     // a port with none (connects are refused)
  close(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

/** A network namespace joined to this host by a veth pair on PREFIX.0/30: the host end is
 * PREFIX.1, the namespace's PREFIX.2. close() removes both (and is safe to call twice). */
export function createVethNamespace(name: string, hostIf: string, nsIf: string, prefix: string): { address: string; close(): void } {
  const address = `${prefix}.2`;
  ip('netns', 'add', name);
  const close = () => {
    try { ip('link', 'del', hostIf); } catch { /* gone with the namespace */ }
    try { ip('netns', 'del', name); } catch { /* already gone */ }
  };
  try {
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    ip('link', 'set', nsIf, 'netns', name);
    ip('addr', 'add', `${prefix}.1/30`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/30`, 'dev', nsIf);
    ip('netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (e) {
    close();
    throw e;
  }
  return { address, close };
}

export async function createTestHost(subnet: number): Promise<TestHost> {
  const name = `vigil-t${process.pid % 10000}-${subnet}`;
  const ns = createVethNamespace(name, `vth${process.pid % 10000}${subnet}`, `vtn${process.pid % 10000}${subnet}`, `10.231.${subnet}`);
  const address = ns.address;
  let listener: ChildProcess | undefined;
  const close = () => {
    listener?.kill('SIGKILL');
    ns.close();
  };
  try {
    const listenPort = 8080;
    const proc = spawn('ip', ['netns', 'exec', name, process.execPath, '-e',
      `require('net').createServer((s) => s.end('hello\\n')).listen(${listenPort}, '${address}', () => console.log('listening'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
    listener = proc;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('listener in the test namespace did not start')), 10_000);
      proc.stdout!.on('data', () => { clearTimeout(t); resolve(); });
      proc.once('exit', (code) => { clearTimeout(t); reject(new Error(`listener exited with ${code}`)); });
    });
    return { name, address, listenPort, closedPort: 8081, close };
  } catch (e) {
    close();
    throw e;
  }
}
