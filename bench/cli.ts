// `vigil bench NAME`: runs one benchmark of bench/NAME/main.ts. Each benchmark prints a
// table and writes bench/results/NAME.json (see bench/lib/report.ts).
interface BenchModule { main(argv: string[]): Promise<number> }
const names = ['analyze', 'attest', 'overhead', 'pipeline', 'policy', 'respond', 'tpm'];
// The module path is built at run time so each benchmark compiles on its own.
const benchmarks: Record<string, () => Promise<BenchModule>> = Object.fromEntries(
  names.map((n) => [n, () => import(`./${n}/main.js`) as Promise<BenchModule>]),
);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    process.stdout.write(`usage: vigil bench <${Object.keys(benchmarks).join('|')}> [options]\n`);
    return name ? 0 : 2;
  }
  const load = benchmarks[name];
  if (!load) {
    process.stderr.write(`vigil bench: unknown benchmark '${name}' (known: ${Object.keys(benchmarks).join(', ')})\n`);
    return 2;
  }
  return (await load()).main(rest);
}
