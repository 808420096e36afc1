// A socket's TCP state changes are attributed through the owner the connect, listen or
// accept left for it. That owner was kept only in an LRU map shared by every container:
// a flood of connects that never change state (no route: they fail before any SYN; the
// sockets kept open, so each is another entry) evicted the others, and a connection's later changes were dropped. A connection that
// reached a state is now kept in the socket's own storage, where no flood reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingForContainerTests, missingWorkloadImages, WORKLOAD_IMAGES } from '../helpers/host.js';
import { brief, observe } from '../helpers/observe.js';

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
