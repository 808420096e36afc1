// The Docker API client against the real engine, and against a socket answering shapes
// the engine never would: those are errors naming the field, not crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { DockerApiError, DockerClient } from '../../src/containers/index.js';
import { docker, missingForContainerTests, TEST_IMAGES, uniqueName } from '../helpers/host.js';
import { tempDir } from '../helpers/observe.js';

test('inspect of a running container: id, name, image, pid', { skip: missingForContainerTests() }, async () => {
  const name = uniqueName('vigil-inspect');
  try {
    const id = docker('run', '-d', '--pull', 'never', '--label', 'vigil.test=1', '--name', name, TEST_IMAGES.busybox, 'sleep', '30');
    const info = await new DockerClient().inspect(id);
    assert.equal(info.id, id);
    assert.equal(info.name, name);
    assert.equal(info.image, TEST_IMAGES.busybox);
    assert.equal(info.running, true);
    assert.ok(info.pid > 0);
    assert.equal(info.labels['vigil.test'], '1');
    assert.ok((await new DockerClient().runningContainerIds()).includes(id));
  } finally {
    docker('rm', '-f', name);
  }
});

async function fakeEngine(answer: (path: string) => string): Promise<{ socket: string; server: Server }> {
  const socket = join(tempDir('vigil-fake-docker'), 'docker.sock');
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(answer(req.url ?? ''));
  });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, server };
}

test('answers of the wrong shape are DockerApiErrors naming what is wrong', async () => {
  const bodies: Record<string, string> = {
    '/containers/a/json': '[1,2]',
    '/containers/b/json': '{"Name":"/x"}',
    '/containers/c/json': '{"Id":"c","State":{"Pid":"12"}}',
    '/containers/d/json': '{"Id":"d","Config":"no"}',
    '/containers/json': '[{"Id":7}]',
  };
  const { socket, server } = await fakeEngine((path) => bodies[path] ?? 'not json');
  try {
    const client = new DockerClient(socket);
    const expect = async (p: Promise<unknown>, message: RegExp) => {
      await assert.rejects(p, (e: unknown) => e instanceof DockerApiError && message.test(e.message));
    };
    await expect(client.inspect('a'), /\/containers\/a\/json is not an object/);
    await expect(client.inspect('b'), /\/containers\/b\/json: Id is missing, not a string/);
    await expect(client.inspect('c'), /State: Pid is a string, not a number/);
    await expect(client.inspect('d'), /Config is not an object/);
    await expect(client.inspect('e'), /returned invalid JSON/);
    await expect(client.runningContainerIds(), /\/containers\/json\[0\]: Id is a number, not a string/);
  } finally {
    server.close();
  }
});
