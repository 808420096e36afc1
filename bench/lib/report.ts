// Shared output of every benchmark: a printed table and bench/results/<name>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export type Cell = string | number;
export interface Table { title: string; columns: string[]; rows: Cell[][] }

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function formatTable(table: Table): string {
  const text = table.rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = table.columns.map((h, i) => Math.max(h.length, ...text.map((r) => String(r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [table.title, line(table.columns), line(widths.map((w) => '-'.repeat(w))), ...text.map((r) => line(r.map(String)))].join('\n');
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

/** The directory benchmarks write their results to unless told otherwise. */
export const RESULTS_DIR = join(repoRoot, 'bench', 'results');

/** Prints the tables and writes <dir>/<name>.json (default bench/results) with the machine it ran on. */
export function report(name: string, tables: Table[], data: Record<string, unknown>, dir: string = RESULTS_DIR): string {
  for (const t of tables) process.stdout.write(formatTable(t) + '\n\n');
  const path = join(dir, `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  const machine = machineInfo();
  writeFileSync(path, JSON.stringify({ name, time: new Date().toISOString(), machine, tables, ...data }, null, 2) + '\n');
  process.stdout.write(`wrote ${path}\n`);
  return path;
}

/** What a result was measured on. */
export function machineInfo(): Record<string, string | number> {
  return { node: process.version, kernel: os.release(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryBytes: os.totalmem() };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}
