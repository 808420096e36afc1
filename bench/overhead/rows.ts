// The rows of the paper's Table 6, each run inside a container on this machine:
// the OSBench-like micro tests (bench/overhead/micro.c), Apache under `ab`, a C build,
// and fio random read and write.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_IMAGES } from '../../test/helpers/host.js';

const run = promisify(execFile);

export const BENCH_IMAGES = { apache: 'vigil-test/apache:1', fio: 'vigil-test/fio:1' } as const;

/** The paper's figures for a row (Table 6): control group, with its monitor, and the cost in percent. */
export interface PaperFigures { control: number; scheme: number; overheadPct: number }

export interface RowContext {
  /** Host directory holding the static `micro` program, mounted read-only at /bench. */
  microDir: string;
  quick: boolean;
  /** A name unique to this run, for containers. */
  tag: string;
}

export interface Row {
  name: string;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  paper: PaperFigures;
  /** At most this many repetitions (a long row), whatever --repeats says. */
  maxRepeats?: number;
  /** Why the row cannot run here (a missing image or package), or undefined. */
  unavailable(ctx: RowContext): string | undefined;
  /** One repetition: the measured value in `unit`. */
  measure(ctx: RowContext): Promise<number>;
}

const dockerRun = (args: string[]) => ['run', '--rm', '--pull', 'never', ...args];

function haveImage(image: string): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const imageMissing = (image: string) => (haveImage(image) ? undefined : `image ${image} is missing (scripts/build-test-images.sh builds it)`);

async function micro(ctx: RowContext, args: string[]): Promise<number> {
  const { stdout } = await run('docker', dockerRun(['--name', `${ctx.tag}-micro`, '-v', `${ctx.microDir}:/bench:ro`, TEST_IMAGES.busybox, '/bench/micro', ...args]), { encoding: 'utf8' });
  const value = Number(stdout.trim());
  if (!Number.isFinite(value)) throw new Error(`micro ${args.join(' ')} printed ${JSON.stringify(stdout)}`);
  return value;
}

function microRow(name: string, label: string, unit: string, paper: PaperFigures, args: (ctx: RowContext) => string[]): Row {
  return {
    name, label, unit, higherIsBetter: false, paper,
    unavailable: () => imageMissing(TEST_IMAGES.busybox),
    measure: (ctx) => micro(ctx, args(ctx)),
  };
}

async function containerAddress(name: string): Promise<string> {
  const { stdout } = await run('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', name], { encoding: 'utf8' });
  const ip = stdout.trim().split(' ')[0];
  if (!ip) throw new Error(`container ${name} has no address on a Docker network`);
  return ip;
}

async function untilServing(ip: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await run('ab', ['-q', '-n', '1', `http://${ip}:${port}/`]);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`apache at ${ip}:${port} did not answer in ${timeoutMs} ms: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const apache: Row = {
  name: 'apache', label: 'Apache', unit: 'requests/s', higherIsBetter: true,
  paper: { control: 43232.9, scheme: 38370.13, overheadPct: 11.25 },
  unavailable: () => imageMissing(BENCH_IMAGES.apache) ?? (existsSync('/usr/bin/ab') ? undefined : 'ab is missing (Debian apache2-utils; scripts/bootstrap.sh installs it)'),
  async measure(ctx) {
    const name = `${ctx.tag}-apache`;
    await run('docker', ['run', '-d', '--rm', '--pull', 'never', '--name', name, BENCH_IMAGES.apache]);
    try {
      const ip = await containerAddress(name);
      await untilServing(ip, 8080, 30_000);
      // One connection per request (no keep-alive), as a load of many clients gives.
      const n = ctx.quick ? 5000 : 20000;
      const { stdout } = await run('ab', ['-q', '-n', String(n), '-c', '16', `http://${ip}:8080/index.html`], { encoding: 'utf8' });
      const failed = Number(/Failed requests:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
      if (failed > 0) throw new Error(`ab: ${failed} of ${n} requests failed`);
      const rate = Number(/Requests per second:\s+([\d.]+)/.exec(stdout)?.[1]);
      if (!Number.isFinite(rate)) throw new Error(`ab printed no rate:\n${stdout}`);
      return rate;
    } finally {
      await run('docker', ['rm', '-f', name]).catch(() => undefined);
    }
  },
};

function fioRow(name: string, label: string, rw: 'randread' | 'randwrite', paper: PaperFigures): Row {
  return {
    name, label, unit: 'MB/s', higherIsBetter: true, paper,
    unavailable: () => imageMissing(BENCH_IMAGES.fio),
    async measure(ctx) {
      const seconds = ctx.quick ? 3 : 10;
      // 4 KiB synchronous reads or writes at random offsets of a 256 MiB file in the
      // container's writable layer: one system call per block, the cost a monitor adds to.
      const { stdout } = await run('docker', dockerRun(['--name', `${ctx.tag}-fio`, BENCH_IMAGES.fio,
        'fio', '--name=vigil', `--rw=${rw}`, '--bs=4k', '--size=256M', '--ioengine=psync', `--runtime=${seconds}`, '--time_based',
        '--filename=/data/file', '--output-format=json']), { encoding: 'utf8', maxBuffer: 16 << 20 });
      const job = (JSON.parse(stdout) as { jobs: Array<Record<'read' | 'write', { bw_bytes: number }>> }).jobs[0];
      if (!job) throw new Error('fio reported no job');
      return (rw === 'randread' ? job.read : job.write).bw_bytes / 1e6;
    },
  };
}

/** The Linux source tree the build row compiles (Debian's linux-source package), or undefined. */
function linuxSourceTarball(): string | undefined {
  const dir = '/usr/src';
  const tarball = existsSync(dir) ? readdirSync(dir).find((f) => /^linux-source-[\d.]+\.tar\.xz$/.test(f)) : undefined;
  return tarball ? join(dir, tarball) : undefined;
}

const BUILD_TOOLS = ['gcc', 'make', 'flex', 'bison', 'bc', 'perl'];
export const BUILD_CACHE = '/var/tmp/vigil-bench-build';

const build: Row = {
  name: 'build', label: 'Kernel compile', unit: 's', higherIsBetter: false,
  paper: { control: 121.58, scheme: 124.68, overheadPct: 2.55 },
  // Minutes per build on 2 cores: two per mode keep a full run near an hour.
  maxRepeats: 2,
  unavailable(ctx) {
    if (ctx.quick) return 'skipped by --quick';
    if (!linuxSourceTarball()) return 'no /usr/src/linux-source-*.tar.xz (apt-get install linux-source flex bison bc libelf-dev)';
    const missing = BUILD_TOOLS.filter((t) => !existsSync(`/usr/bin/${t}`));
    return missing.length ? `build tools missing on the host: ${missing.join(', ')}` : undefined;
  },
  async measure(ctx) {
    // The tree is unpacked once; each repetition configures tinyconfig from clean and builds it.
    const src = join(BUILD_CACHE, 'linux');
    if (!existsSync(join(src, 'Makefile'))) {
      mkdirSync(src, { recursive: true });
      execFileSync('tar', ['-C', src, '--strip-components=1', '-xJf', linuxSourceTarball()!]);
    }
    // The host's tool chain, read-only, in the bash image (busybox's sh would run its own
    // applets, such as ar, before the tool chain's): what runs is the build's processes
    // inside a container, which is what the monitor watches. The tools are bind-mounted,
    // not the image's, so vigil's default policy reports their execs.
    const mounts = ['-v', '/usr:/usr:ro', '-v', '/lib:/lib:ro', '-v', '/lib64:/lib64:ro', '-v', '/etc/alternatives:/etc/alternatives:ro', '-v', `${src}:/src`];
    const script = 'cd /src && make -s mrproper && make -s tinyconfig >/dev/null && start=$(date +%s.%N) && make -s -j2 >/dev/null && end=$(date +%s.%N) && echo "$end - $start" | bc';
    const { stdout } = await run('docker', dockerRun(['--name', `${ctx.tag}-build`, ...mounts, TEST_IMAGES.bash, 'sh', '-c', script]), { encoding: 'utf8', maxBuffer: 64 << 20 });
    return Number(stdout.trim().split('\n').pop());
  },
};

export const ROWS: Row[] = [
  apache,
  build,
  microRow('file-creation', 'File creation', 'µs/file', { control: 14.96, scheme: 16.59, overheadPct: 10.9 }, (c) => ['files', c.quick ? '20000' : '50000', '/tmp']),
  microRow('thread-creation', 'Thread creation', 'µs/thread', { control: 17.51, scheme: 19.52, overheadPct: 11.48 }, (c) => ['threads', c.quick ? '10000' : '30000']),
  microRow('process-creation', 'Process creation', 'µs/process', { control: 26.44, scheme: 28.81, overheadPct: 8.96 }, (c) => ['processes', c.quick ? '3000' : '10000']),
  microRow('process-execution', 'Process execution', 'µs/launch', { control: 35.99, scheme: 41.55, overheadPct: 15.45 }, (c) => ['launch', c.quick ? '1000' : '3000', '/bench/micro']),
  microRow('memory-allocation', 'Memory allocation', 'ns/event', { control: 54.73, scheme: 55.88, overheadPct: 2.1 }, (c) => ['malloc', c.quick ? '2000000' : '10000000']),
  fioRow('random-read', 'Random read', 'randread', { control: 67.5, scheme: 66.4, overheadPct: 1.63 }),
  fioRow('random-write', 'Random write', 'randwrite', { control: 732, scheme: 681, overheadPct: 6.97 }),
];
