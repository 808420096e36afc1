// `vigil respond pause|stop|kill|isolate CONTAINER`: asks the running agent, through its
// control socket, to act on a container; prints the outcome the agent logged.
import { readFileSync } from 'node:fs';
import { CONTROL_ACTIONS, requestAction, tokenPathOf } from './control.js';
import { DEFAULT_SOCKET } from './config.js';
import type { ContainerAction } from './responder.js';

export const RESPOND_USAGE = `usage: vigil respond pause|stop|kill|isolate CONTAINER [options]

Asks the running agent to act on a container (by name or id) through its control socket.
The agent applies its safety rails (protected containers, dry run) and logs the action.

  pause     freeze every process of the container (docker pause)
  stop      SIGTERM, then SIGKILL after the timeout (docker stop); restart policy set to "no" first
  kill      SIGKILL every process (docker kill); restart policy set to "no" first
  isolate   disconnect the container from every network

options:
  --socket PATH      the agent's control socket (default ${DEFAULT_SOCKET})
  --token FILE       the token file (default: PATH.token)
  --timeout SECONDS  for stop: seconds between SIGTERM and SIGKILL (default: the agent's respond.stopTimeoutSeconds)
  --json             print the agent's answer as JSON
  -h, --help         this text

Exit status: 0 when the action was done (or, in dry run, would be), 1 when it was not, 2 on bad usage.`;

export async function main(argv: string[]): Promise<number> {
  const err = (m: string) => process.stderr.write(`vigil respond: ${m}\n`);
  let socket = DEFAULT_SOCKET;
  let tokenFile: string | undefined;
  let timeout: number | undefined;
  let json = false;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v === '') throw new Error(`option ${a} needs a value`);
      return v;
    };
    try {
      if (a === '-h' || a === '--help') {
        process.stdout.write(RESPOND_USAGE + '\n');
        return 0;
      } else if (a === '--socket') socket = value();
      else if (a === '--token') tokenFile = value();
      else if (a === '--timeout') {
        const v = value();
        timeout = Number(v);
        if (!/^\d+$/.test(v) || timeout > 600) throw new Error(`--timeout must be a whole number of seconds from 0 to 600, not '${v}'`);
      } else if (a === '--json') json = true;
      else if (a.startsWith('-')) throw new Error(`unknown option '${a}' (see vigil respond --help)`);
      else positional.push(a);
    } catch (e) {
      err((e as Error).message);
      return 2;
    }
  }
  const [action, container, ...extra] = positional;
  if (!action || !(CONTROL_ACTIONS as readonly string[]).includes(action) || !container || extra.length > 0) {
    err(`expected ACTION CONTAINER with ACTION one of ${CONTROL_ACTIONS.join(', ')}`);
    process.stderr.write(RESPOND_USAGE + '\n');
    return 2;
  }
  const tokenPath = tokenFile ?? tokenPathOf(socket);
  let token: string;
  try {
    token = readFileSync(tokenPath, 'utf8').trim();
  } catch (e) {
    err(`cannot read the token ${tokenPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  let answer;
  try {
    answer = await requestAction(socket, token, { action: action as ContainerAction, container, timeoutSeconds: timeout });
  } catch (e) {
    err((e as Error).message);
    return 1;
  }
  if (json) process.stdout.write(JSON.stringify(answer) + '\n');
  if (!answer.ok) {
    if (!json) err(`refused: ${answer.error}`);
    return 1;
  }
  const r = answer.response;
  if (!json) {
    const detail = [r.reason, r.error, r.restartPolicyWas ? `restart policy was '${String(r.restartPolicyWas)}', now 'no'` : undefined,
      Array.isArray(r.networks) && r.networks.length > 0 ? `networks: ${r.networks.join(', ')}` : undefined].filter(Boolean).join('; ');
    process.stdout.write(`${r.action} ${container}: ${r.outcome}${detail ? ` (${detail})` : ''}\n`);
  }
  return r.outcome === 'done' || r.outcome === 'would' ? 0 : 1;
}
