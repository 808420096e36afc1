// A socket's TCP state changes are attributed through the owner the connect, listen or
// accept left for it. That owner was kept only in an LRU map shared by every container:
// a flood of connects that never change state (no route: they fail before any SYN; the
// sockets kept open, so each is another entry) evicted the others, and a connection's later changes were dropped. A connection that
// reached a state is now kept in the socket's own storage, where no flood reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingForContainerTests, missingWorkloadImages, WORKLOAD_IMAGES } from '../helpers/host.js';
import { agentConfig, brief, observe } from '../helpers/observe.js';

const skip = missingForContainerTests() ?? missingWorkloadImages();

const SCRIPT = `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 4741)); l.listen()
c = socket.socket(); c.connect(("127.0.0.1", 4741)); a, _ = l.accept()
port = c.getsockname()[1]
flood = []
for i in range(19500):
    s = socket.socket()
    try:
        s.connect(("10.255.255.1", 1))
    except OSError:
        pass
    flood.append(s)
c.close(); a.close(); l.close()
print(port)
`;

test('a connection\'s close is still attributed after a flood of 19,500 connects (more than the LRU\'s 16,384 entries) that never change state', { skip }, async () => {
  const r = await observe([['--no-default-policy']], {
    image: WORKLOAD_IMAGES.python,
    script: `python3 -c '${SCRIPT}'`,
    dockerArgs: ['--network', 'none', '--ulimit', 'nofile=20000:20000'],
    namePrefix: 'vigil-socks',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const port = Number(r.logs.trim().split('\n').pop());
  const events = r.agents[0]?.events ?? [];
  const tcp = events.filter((e) => e.kind === 'tcp');
  const close = tcp.find((e) => e.args['oldstate'] === 'ESTABLISHED' && e.args['newstate'] === 'FIN_WAIT1' && e.args['local'] === `127.0.0.1:${port}`);
  assert.ok(close, `the client's close after the flood is reported (port ${port}): ${brief(tcp.slice(-10))}`);
  assert.ok(close.process.name.startsWith('python'), JSON.stringify(close.process));
});

// A bind shell's accepted connection: its state changes after accept used to wait for
// their owner in the shared LRU, where 18,000 later accepted connections, kept open,
// evicted it. It now inherits its listener's owner when the kernel makes it, in its own
// storage; the listener took its owner in its listen call, from the task's storage. The
// clients are two forked processes of 9,000 connections each (nofile is at most 20,000).
const ACCEPT_FLOOD = `
import os, socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 4742)); l.listen(4096)
c = socket.socket(); c.connect(("127.0.0.1", 4742)); a, _ = l.accept()
port = c.getsockname()[1]
hold_r, hold_w = os.pipe()
for k in range(2):
    if os.fork() == 0:
        os.close(hold_w); l.close(); c.close(); a.close()
        mine = []
        for i in range(9000):
            s = socket.socket(); s.connect(("127.0.0.1", 4742)); mine.append(s)
        os.read(hold_r, 1)
        os._exit(0)
os.close(hold_r)
flood = [l.accept()[0] for i in range(18000)]
c.close()
a.recv(1)
a.close()
l.close()
os.close(hold_w)
os.wait(); os.wait()
print(port)
`;

test('an accepted connection\'s close is still attributed after 18,000 more accepted connections (more than the LRU\'s 16,384 entries)', { skip, timeout: 600_000 }, async () => {
  // Only the server's calls: 18,000 connects (and the client sockets' state changes) would
  // be as many more events, for nothing this test asks.
  const config = agentConfig('capture:\n  syscalls: [listen, accept, accept4]\n');
  const r = await observe([['--no-default-policy', '--config', config]], {
    image: WORKLOAD_IMAGES.python,
    script: `python3 -c '${ACCEPT_FLOOD}'`,
    dockerArgs: ['--network', 'none', '--ulimit', 'nofile=20000:20000'],
    namePrefix: 'vigil-accept-flood',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const port = Number(r.logs.trim().split('\n').pop());
  const tcp = (r.agents[0]?.events ?? []).filter((e) => e.kind === 'tcp' && e.container.id === r.id);
  const victim = tcp.filter((e) => e.args['local'] === '127.0.0.1:4742' && e.args['remote'] === `127.0.0.1:${port}`);
  // The peer's FIN arrives in softirq: CLOSE_WAIT has no task of its own to name.
  const fin = victim.find((e) => e.args['oldstate'] === 'ESTABLISHED' && e.args['newstate'] === 'CLOSE_WAIT');
  assert.ok(fin, `the accepted socket's CLOSE_WAIT after the flood is reported (peer port ${port}): ${brief(victim)}`);
  assert.ok(fin.process.name.startsWith('python'), JSON.stringify(fin.process));
  const last = victim.find((e) => e.args['oldstate'] === 'CLOSE_WAIT' && e.args['newstate'] === 'LAST_ACK');
  assert.ok(last, `and its own close: ${brief(victim)}`);
  // The handshake before accept is the listener's business, not reported as the accepted socket's.
  assert.ok(!victim.some((e) => e.args['newstate'] === 'SYN_RECV'), brief(victim));
  // The listener itself took its owner in the listen call.
  const listener = tcp.find((e) => e.args['local'] === '127.0.0.1:4742' && e.args['oldstate'] === 'LISTEN' && e.args['newstate'] === 'CLOSE');
  assert.ok(listener, `the listener's close is reported: ${brief(tcp.filter((e) => e.args['oldstate'] === 'LISTEN' || e.args['newstate'] === 'LISTEN'))}`);
});

// A reverse connection opened by sendto(MSG_FASTOPEN) passes no connect call: nothing
// announced the socket, and its state changes went unreported. Its first state change
// (CLOSE to SYN_SENT) runs in the task that opens it, which now owns it.
const FASTOPEN = `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 4743)); l.listen()
c = socket.socket(); c.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", 4743)); a, _ = l.accept()
assert a.recv(1) == b"x"
port = c.getsockname()[1]
c.close(); a.close(); l.close()
print(port)
`;

test('a connection opened by sendto(MSG_FASTOPEN), with no connect call, has its state changes attributed', { skip }, async () => {
  const r = await observe([['--no-default-policy']], {
    image: WORKLOAD_IMAGES.python,
    script: `python3 -c '${FASTOPEN}'`,
    dockerArgs: ['--network', 'none'],
    namePrefix: 'vigil-fastopen',
  });
  assert.equal(r.exitCode, 0, r.logs);
  const port = Number(r.logs.trim().split('\n').pop());
  const mine = (r.agents[0]?.events ?? []).filter((e) => e.kind === 'tcp' && e.container.id === r.id);
  // At SYN_SENT the kernel has not chosen the local port yet (it shows as 0).
  const open = mine.find((e) => e.args['oldstate'] === 'CLOSE' && e.args['newstate'] === 'SYN_SENT' && e.args['remote'] === '127.0.0.1:4743');
  assert.ok(open, `the fast-open SYN is reported: ${brief(mine)}`);
  assert.ok(open.process.name.startsWith('python'), JSON.stringify(open.process));
  const tcp = mine.filter((e) => e.args['local'] === `127.0.0.1:${port}`);
  assert.ok(tcp.every((e) => e.process.name.startsWith('python')), brief(tcp));
  assert.ok(tcp.some((e) => e.args['oldstate'] === 'SYN_SENT' && e.args['newstate'] === 'ESTABLISHED'), brief(tcp));
  assert.ok(tcp.some((e) => e.args['oldstate'] === 'ESTABLISHED' && e.args['newstate'] === 'FIN_WAIT1'), brief(tcp));
});
