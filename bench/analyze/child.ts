// One analysis in a fresh process, so its time and peak memory are its own: prints
// {ms, cpuMs, maxRssBytes, syscalls, unresolved, files, cachedFiles, imageCached} as JSON.
import { analyzeImage } from '../../src/analysis/index.js';

const [ref, cacheDir] = process.argv.slice(2);
if (!ref || !cacheDir) {
  process.stderr.write('usage: child IMAGE CACHE_DIR\n');
  process.exit(2);
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const r = await analyzeImage(ref, { cacheDir });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({
  ms,
  cpuMs: (cpu.user + cpu.system) / 1000,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
  syscalls: r.syscalls.length,
  unresolved: r.unresolved.length,
  files: r.stats.files,
  cachedFiles: r.stats.cachedFiles,
  imageCached: r.stats.imageCached,
  instructions: r.stats.instructions,
}) + '\n');
