// `vigil agent`: runs the agent until SIGINT/SIGTERM (or --duration) and exits 0, or
// prints one line saying what is wrong and exits non-zero.
import { Agent } from './agent.js';
import { AGENT_USAGE, ConfigError, parseAgentArgs } from './config.js';
import { OutputSpecError } from './outputs.js';
import { PolicyError } from '../policy/index.js';

export async function main(argv: string[]): Promise<number> {
  const log = (msg: string) => process.stderr.write(`vigil agent: ${msg}\n`);
  let config;
  try {
    config = parseAgentArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof OutputSpecError) {
      log(e.message);
      return 2;
    }
    throw e;
  }
  if (config === null) {
    process.stdout.write(AGENT_USAGE + '\n');
    return 0;
  }
  let fatal: string | undefined;
  let onFatal: () => void = () => undefined;
  const agent = new Agent(config, log, (message) => {
    fatal ??= message;
    onFatal();
  });
  try {
    await agent.start();
  } catch (e) {
    await agent.stop().catch(() => undefined);
    if (e instanceof PolicyError) {
      log(`the policy has ${e.problems.length} problem${e.problems.length === 1 ? '' : 's'}; nothing started:`);
      process.stderr.write(e.message + '\n');
      return 2;
    }
    log(e instanceof Error ? e.message : String(e));
    return 1;
  }
  const outputs = config.outputs.map((o) => `${o.insecureOnly ? 'alerts ' : ''}${o.format}:${o.path}`).join(', ');
  const logDir = config.log ? `, the tamper-evident log in ${config.log.dir}${config.anchor ? ` anchored in ${config.anchor.bmc}` : ''}` : '';
  log(`ready: watching containers on ${config.host}, writing ${outputs}${logDir}; policy: ${agent.policySummary()}`);
  const dumpCounts = () => {
    try {
      const path = agent.writeSyscallCounts();
      log(path ? `wrote syscall counts to ${path}` : 'no --counts path configured; syscall counts not written');
    } catch (e) {
      log(`cannot write syscall counts: ${(e as Error).message}`);
    }
  };
  const reopen = () => {
    agent.reloadPolicy('SIGHUP');
    agent.reopenOutputs().then(
      () => log('reopened the output files'),
      (e: unknown) => log(`cannot reopen the output files: ${(e as Error).message}`),
    );
  };
  process.on('SIGUSR1', dumpCounts);
  process.on('SIGHUP', reopen);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    onFatal = resolve;
    if (fatal) resolve();
    if (config.durationSeconds > 0) setTimeout(resolve, config.durationSeconds * 1000);
  });
  process.off('SIGUSR1', dumpCounts);
  process.off('SIGHUP', reopen);
  const s = await agent.stop();
  // emitted: events handed to the outputs; the lines they could not write (a full disk) are counted apart.
  log(`stopped: ${s.emitted} events emitted, ${s.outputLost} output lines lost (could not be written), ${s.lost} records lost in the kernel, ${s.droppedHost} host records dropped, ${s.unresolved} without a known container, ${s.decodeErrors} bad records`);
  if (fatal) {
    log(`stopped because of a failure it cannot watch through: ${fatal}`);
    return 1;
  }
  return 0;
}
