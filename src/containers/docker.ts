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
}

export interface DockerEvent {
  action: string; // start, die, destroy, ...
  id: string;
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
    const j = (await this.request(`/containers/${encodeURIComponent(id)}/json`, timeoutMs)) as InspectJson;
    return {
      id: j.Id,
      name: (j.Name ?? '').replace(/^\//, ''),
      image: j.Config?.Image ?? '',
      imageId: j.Image ?? '',
      labels: j.Config?.Labels ?? {},
      pid: j.State?.Pid ?? 0,
      running: j.State?.Running ?? false,
    };
  }

  async runningContainerIds(): Promise<string[]> {
    const list = (await this.request('/containers/json')) as Array<{ Id: string }>;
    return list.map((c) => c.Id);
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
              const j = JSON.parse(line) as { Action?: string; Actor?: { ID?: string }; id?: string };
              const id = j.Actor?.ID ?? j.id;
              if (j.Action && id) onEvent({ action: j.Action, id });
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

interface InspectJson {
  Id: string;
  Name?: string;
  Image?: string;
  Config?: { Image?: string; Labels?: Record<string, string> | null } | null;
  State?: { Pid?: number; Running?: boolean };
}
