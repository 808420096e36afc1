// A small Docker Engine API client over the unix socket: inspect, list and the event
// stream. Only what the resolver needs; every call has a timeout so a wedged daemon
// cannot hold the agent.
import http from 'node:http';

export interface DockerContainerInfo {
  id: string;
  name: string;
  image: string;       // as the user named it (Config.Image)
  imageId: string;
  labels: Record<string, string>;
  pid: number;         // host pid of the container's init, 0 when not running
  running: boolean;
  /** The container's writable layer on the host (overlay2's UpperDir), '' when the driver has none. */
  upperDir: string;
  /** The image's layers on the host (overlay2's LowerDir, top first), [] when the driver has none. */
  lowerDirs: string[];
}

export interface DockerEvent {
  action: string; // create, start, die, destroy, ...
  id: string;
  /** Actor.Attributes: the container's name and image (as the user named it) and its labels. */
  attributes: Record<string, string>;
}

export class DockerApiError extends Error {
  readonly code = 'VIGIL_DOCKER_API';
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'DockerApiError';
  }
}

export class DockerClient {
  constructor(readonly socketPath = '/var/run/docker.sock', private readonly timeoutMs = 5000) {}

  private request(path: string, timeoutMs = this.timeoutMs): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = http.get({ socketPath: this.socketPath, path, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 400) {
            reject(new DockerApiError(`Docker API ${path} answered ${res.statusCode}: ${body.trim()}`, res.statusCode));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch {
            reject(new DockerApiError(`Docker API ${path} returned invalid JSON`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new DockerApiError(`Docker API ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof DockerApiError ? e : new DockerApiError(`Docker API at ${this.socketPath}: ${e.message}`)));
    });
  }

  async inspect(id: string, timeoutMs?: number): Promise<DockerContainerInfo> {
    const path = `/containers/${encodeURIComponent(id)}/json`;
    const j = record(await this.request(path, timeoutMs), path);
    const config = j['Config'] === null || j['Config'] === undefined ? {} : record(j['Config'], `${path} Config`);
    const state = j['State'] === undefined ? {} : record(j['State'], `${path} State`);
    const labels = config['Labels'] === null || config['Labels'] === undefined ? {} : record(config['Labels'], `${path} Config.Labels`);
    return {
      id: field(j, 'Id', 'string', path, undefined),
      name: field(j, 'Name', 'string', path, '').replace(/^\//, ''),
      image: field(config, 'Image', 'string', `${path} Config`, ''),
      imageId: field(j, 'Image', 'string', path, ''),
      labels: Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string')),
      pid: field(state, 'Pid', 'number', `${path} State`, 0),
      running: field(state, 'Running', 'boolean', `${path} State`, false),
      upperDir: graphDir(j, path, 'UpperDir'),
      lowerDirs: graphDir(j, path, 'LowerDir').split(':').filter((d) => d !== ''),
    };
  }

  async runningContainerIds(): Promise<string[]> {
    const list = await this.request('/containers/json');
    if (!Array.isArray(list)) throw new DockerApiError('Docker API /containers/json did not answer a list');
    return list.map((c, i) => field(record(c, `/containers/json[${i}]`), 'Id', 'string', `/containers/json[${i}]`, undefined));
  }

  /**
   * Follows container events until stop() is called. Reconnects after a failure with a
   * delay, since the daemon may restart under a running agent.
   */
  followEvents(onEvent: (e: DockerEvent) => void, onError: (e: Error) => void): { stop(): void } {
    let stopped = false;
    let current: http.ClientRequest | undefined;
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
    const connect = () => {
      if (stopped) return;
      let buffered = '';
      current = http.get({ socketPath: this.socketPath, path: `/events?filters=${filters}` }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          let nl;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            try {
              const j = JSON.parse(line) as { Action?: string; Actor?: { ID?: string; Attributes?: unknown }; id?: string };
              const id = j.Actor?.ID ?? j.id;
              const raw = j.Actor?.Attributes;
              const attributes: Record<string, string> = {};
              if (typeof raw === 'object' && raw !== null) {
                for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') attributes[k] = v;
              }
              if (j.Action && id) onEvent({ action: j.Action, id, attributes });
            } catch {
              onError(new DockerApiError('Docker event stream sent a line that is not JSON'));
            }
          }
        });
        res.on('end', () => retry());
      });
      current.on('error', (e) => {
        if (!stopped) onError(new DockerApiError(`Docker event stream: ${e.message}`));
        retry();
      });
    };
    const retry = () => {
      if (!stopped) setTimeout(connect, 1000).unref();
    };
    connect();
    return {
      stop: () => {
        stopped = true;
        current?.destroy();
      },
    };
  }
}

// The Docker API's answers are checked where they are read: a daemon (or something
// else on its socket) that answers another shape gets an error naming the field.
function record(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DockerApiError(`Docker API ${where} is not an object`);
  return v as Record<string, unknown>;
}

interface FieldTypes { string: string; number: number; boolean: boolean }
function field<K extends keyof FieldTypes>(o: Record<string, unknown>, name: string, type: K, where: string, fallback: FieldTypes[K] | undefined): FieldTypes[K] {
  const v = o[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== type) throw new DockerApiError(`Docker API ${where}: ${name} is ${v === undefined ? 'missing' : `a ${typeof v}`}, not a ${type}`);
  return v as FieldTypes[K];
}

/** GraphDriver.Data.UpperDir (or LowerDir) of an inspect answer, when the storage driver has one. */
function graphDir(j: Record<string, unknown>, path: string, key: 'UpperDir' | 'LowerDir'): string {
  const driver = j['GraphDriver'];
  if (driver === null || driver === undefined) return '';
  const data = record(driver, `${path} GraphDriver`)['Data'];
  if (data === null || data === undefined) return '';
  const dir = record(data, `${path} GraphDriver.Data`)[key];
  return typeof dir === 'string' ? dir : '';
}
