// bench/analyze: what `vigil analyze` costs per test image, each analysis in a fresh process:
//  - cold: empty cache (export, layers, loader emulation, disassembly of every file);
//  - warm files: per-file summaries cached (a new image sharing its libraries), image result not;
//  - warm: the image's result cached by image id (only an inspect call to Docker);
// with the peak resident memory of the cold run and the list size against Docker's default
// profile (298 system calls on x86-64). Target: an nginx-sized image < 10 s cold, < 1 s warm.
// The CPU time of the cold run is printed beside its wall time: on a loaded machine the wall
// time measures the queue for a core more than the analysis (the load average is recorded).
// Options: --rounds=N (default 3; medians are reported), --images=a,b (default all four).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, type Table } from '../lib/report.js';

const IMAGES: Record<string, string> = {
  busybox: 'vigil-test/busybox:1', nginx: 'vigil-test/nginx:1', redis: 'vigil-test/redis:1', python: 'vigil-test/python:1',
};
const DOCKER_DEFAULT = 298;
const child = resolve(dirname(fileURLToPath(import.meta.url)), 'child.js');

interface Run { ms: number; cpuMs: number; maxRssBytes: number; syscalls: number; unresolved: number; files: number; cachedFiles: number; imageCached: boolean; instructions: number }

function run(image: string, cache: string): Run {
  return JSON.parse(execFileSync(process.execPath, [child, image, cache], { encoding: 'utf8', maxBuffer: 1 << 20 })) as Run;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(argv: string[]): Promise<number> {
  const rounds = Number(argv.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3);
  const only = argv.find((a) => a.startsWith('--images='))?.split('=')[1]?.split(',');
  const names = Object.keys(IMAGES).filter((n) => !only || only.includes(n));
  const rows: Table['rows'] = [];
  const data: Record<string, unknown> = {};
  for (const name of names) {
    const image = IMAGES[name]!;
    try {
      execFileSync('docker', ['image', 'inspect', image], { stdio: 'ignore' });
    } catch {
      process.stderr.write(`bench analyze: ${image} missing (scripts/build-test-images.sh), skipped\n`);
      continue;
    }
    const cold: Run[] = [], warmFiles: Run[] = [], warm: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      const cache = mkdtempSync(join(tmpdir(), 'vigil-bench-analyze-'));
      try {
        cold.push(run(image, cache));
        warm.push(run(image, cache));
        for (const f of readdirSync(cache)) if (f.includes('-image-')) rmSync(join(cache, f));
        warmFiles.push(run(image, cache));
      } finally {
        rmSync(cache, { recursive: true, force: true });
      }
    }
    const c = cold[0]!;
    const row = {
      coldS: median(cold.map((r) => r.ms)) / 1000,
      coldCpuS: median(cold.map((r) => r.cpuMs)) / 1000,
      warmFilesS: median(warmFiles.map((r) => r.ms)) / 1000,
      warmS: median(warm.map((r) => r.ms)) / 1000,
      loadAverage: loadavg()[0]!,
      peakMiB: median(cold.map((r) => r.maxRssBytes)) / 2 ** 20,
      files: c.files,
      instructions: c.instructions,
      syscalls: c.syscalls,
      unresolved: c.unresolved,
      vsDocker: c.syscalls / DOCKER_DEFAULT,
      warmHit: warm.every((r) => r.imageCached),
    };
    data[name] = { image, ...row, rounds, cold, warmFiles, warm };
    rows.push([name, row.coldS, row.coldCpuS, row.warmFilesS, row.warmS, row.peakMiB, row.files, (row.instructions / 1e6).toFixed(2), row.syscalls, DOCKER_DEFAULT, `${(row.vsDocker * 100).toFixed(0)}%`, row.unresolved]);
  }
  const table: Table = {
    title: `vigil analyze per image (median of ${rounds} rounds, each analysis a fresh process; target nginx < 10 s cold, < 1 s warm)`,
    columns: ['image', 'cold s', 'cold CPU s', 'warm files s', 'warm s', 'peak MiB', 'ELF files', 'M instr', 'syscalls', 'docker default', 'of default', 'unresolved'],
    rows,
  };
  report('analyze', [table], { dockerDefault: DOCKER_DEFAULT, images: data });
  return rows.length > 0 ? 0 : 1;
}
