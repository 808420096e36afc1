// Container actions through the Docker Engine API (the same unix socket the resolver
// reads): pause, stop, kill, isolate, and the restart-policy change that keeps a stopped
// container stopped. Every call has a timeout, so a wedged daemon never holds the agent.
import http from 'node:http';
import { DockerApiError } from '../containers/index.js';

/** What an action needs to know of a container, read with one inspect. */
export interface ContainerState {
  id: string;
  name: string;
  labels: Record<string, string>;
  running: boolean;
  paused: boolean;
  /** HostConfig.RestartPolicy.Name: '' or 'no', 'always', 'unless-stopped', 'on-failure'. */
  restartPolicy: string;
  /** HostConfig.NetworkMode: bridge, host, none, container:ID, or a network's name. */
  networkMode: string;
  /** The networks it is connected to (NetworkSettings.Networks' names). */
  networks: string[];
}

interface Answer { status: number; body: string }

export class DockerActions {
  constructor(readonly socketPath = '/var/run/docker.sock', private readonly timeoutMs = 10_000) {}

  private call(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath, path, method, timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('timeout', () => req.destroy(new DockerApiError(`Docker API ${method} ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof DockerApiError ? e : new DockerApiError(`Docker API at ${this.socketPath}: ${e.message}`)));
      req.end(payload);
    });
  }

  /** Docker's own message of a failed call ({"message": ...}), or the body as it came. */
  private fail(method: string, path: string, a: Answer): DockerApiError {
    let message = a.body.trim();
    try {
      const j = JSON.parse(a.body) as { message?: unknown };
      if (typeof j.message === 'string') message = j.message;
    } catch { /* not JSON: keep the text */ }
    return new DockerApiError(`Docker API ${method} ${path} answered ${a.status}: ${message}`, a.status);
  }

  async inspect(idOrName: string): Promise<ContainerState> {
    const path = `/containers/${encodeURIComponent(idOrName)}/json`;
    const a = await this.call('GET', path);
    if (a.status >= 400) throw this.fail('GET', path, a);
    let j: unknown;
    try {
      j = JSON.parse(a.body);
    } catch {
      throw new DockerApiError(`Docker API ${path} returned invalid JSON`);
    }
    const o = obj(j, path);
    const config = obj(o['Config'] ?? {}, `${path} Config`);
    const state = obj(o['State'] ?? {}, `${path} State`);
    const host = obj(o['HostConfig'] ?? {}, `${path} HostConfig`);
    const restart = obj(host['RestartPolicy'] ?? {}, `${path} HostConfig.RestartPolicy`);
    const settings = obj(o['NetworkSettings'] ?? {}, `${path} NetworkSettings`);
    const networks = obj(settings['Networks'] ?? {}, `${path} NetworkSettings.Networks`);
    const labels = obj(config['Labels'] ?? {}, `${path} Config.Labels`);
    const id = o['Id'];
    if (typeof id !== 'string') throw new DockerApiError(`Docker API ${path}: Id is missing`);
    return {
      id,
      name: typeof o['Name'] === 'string' ? o['Name'].replace(/^\//, '') : '',
      labels: Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string')),
      running: state['Running'] === true,
      paused: state['Paused'] === true,
      restartPolicy: typeof restart['Name'] === 'string' ? restart['Name'] : '',
      networkMode: typeof host['NetworkMode'] === 'string' ? host['NetworkMode'] : '',
      networks: Object.keys(networks),
    };
  }

  private async post(path: string, body?: unknown, timeoutMs?: number): Promise<Answer> {
    const a = await this.call('POST', path, body, timeoutMs);
    if (a.status >= 400) throw this.fail('POST', path, a);
    return a;
  }

  pause(id: string): Promise<Answer> {
    return this.post(`/containers/${encodeURIComponent(id)}/pause`);
  }

  /** Docker sends SIGTERM, waits timeoutSeconds, then SIGKILL; the call returns when the container is down. */
  stop(id: string, timeoutSeconds: number): Promise<Answer> {
    return this.post(`/containers/${encodeURIComponent(id)}/stop?t=${timeoutSeconds}`, undefined, (timeoutSeconds + 15) * 1000);
  }

  kill(id: string): Promise<Answer> {
    return this.post(`/containers/${encodeURIComponent(id)}/kill?signal=SIGKILL`);
  }

  /** Sets the restart policy to "no": a stopped or killed container then stays down, also across a daemon restart. */
  noRestart(id: string): Promise<Answer> {
    return this.post(`/containers/${encodeURIComponent(id)}/update`, { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
  }

  disconnect(id: string, network: string): Promise<Answer> {
    return this.post(`/networks/${encodeURIComponent(network)}/disconnect`, { Container: id, Force: true });
  }
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new DockerApiError(`Docker API ${where} is not an object`);
  return v as Record<string, unknown>;
}
