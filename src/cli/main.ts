#!/usr/bin/env node
// The `vigil` command: one binary, one subcommand per program. Each subcommand lives
// in its part's folder as `cli.ts` exporting `main(argv)`; it is imported only when
// asked for, so `vigil bmc` never loads libbpf and `vigil agent` never loads the TPM code.

interface CommandModule { main(argv: string[]): Promise<number> }
// Paths are strings built at run time so each part compiles without the others.
const part = (path: string) => () => import(path) as Promise<CommandModule>;

interface Subcommand {
  summary: string;
  load?: () => Promise<CommandModule>;
}

const subcommands: Record<string, Subcommand> = {
  agent: { summary: 'watch the containers on this host with eBPF and write the event log', load: part('../agent/cli.js') },
  bmc: { summary: 'run the BMC service that owns the TPM and anchors the log', load: part('../bmc/cli.js') },
  server: { summary: 'run the monitoring server (store, API, dashboard) [not built yet]' },
  analyze: { summary: 'derive a system-call allow-list (and a Docker seccomp profile) from a container image', load: part('../analysis/cli.js') },
  log: { summary: 'cut inclusion and consistency proofs from a log directory, and check them offline', load: part('../log/cli.js') },
  verify: { summary: 'prove a log directory complete and unmodified against a quote of the BMC TPM', load: part('../attest/cli.js') },
  policy: { summary: 'check policy documents, replay a recorded log through them, list the rules in force', load: part('../policy/cli.js') },
  respond: { summary: 'ask the running agent to pause, stop, kill or isolate a container', load: part('../respond/cli.js') },
  bench: { summary: 'run a benchmark from bench/ and write bench/results/<name>.json', load: part('../../bench/cli.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(subcommands).map((n) => n.length));
  const lines = Object.entries(subcommands).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`);
  return ['usage: vigil <command> [options]', '', 'commands:', ...lines, '', 'Run `vigil <command> --help` for the options of one command.'].join('\n');
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const sub = subcommands[name];
  if (!sub) {
    process.stderr.write(`vigil: unknown command '${name}'\n${usage()}\n`);
    return 2;
  }
  if (!sub.load) {
    process.stderr.write(`vigil: '${name}' is not built yet in this version\n`);
    return 2;
  }
  const mod = await sub.load();
  return mod.main(rest);
}

run(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`vigil: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
