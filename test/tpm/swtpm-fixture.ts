// A real swtpm per test file: its own temporary state directory and free ports. Tests
// call `skipReason()` first and skip with that reason when the tools are not installed.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { haveProgram, provisionSwtpm, SwtpmProcess, TpmClient, type TpmClientOptions } from '../../src/tpm/index.js';

export const execFileP = promisify(execFile);

export async function missingPrograms(programs: readonly string[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const p of programs) if (!(await haveProgram(p))) missing.push(p);
  return missing.length ? `not installed: ${missing.join(', ')} (scripts/bootstrap.sh installs swtpm, swtpm-tools, tpm2-tools)` : undefined;
}

export interface SwtpmEnv {
  dir: string;
  swtpm: SwtpmProcess;
  client: TpmClient;
  /** PEM certificates of the local CA that signed the EK certificate (provisioned only). */
  caCertificates: string[];
  close(): Promise<void>;
}

/**
 * Starts swtpm (manufactured with EK certificates, state encrypted at rest, when
 * `provision`), powers it on and runs Startup(CLEAR). It listens on unix sockets in its
 * 0700 directory; `listen: 'tcp'` (loopback ports, open to every local user) only for
 * tests that run tpm2-tools, whose swtpm TCTI speaks TCP only.
 */
export async function startSwtpm(options: { provision?: boolean; clientOptions?: TpmClientOptions; listen?: 'unix' | 'tcp' } = {}): Promise<SwtpmEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-tpm-test-'));
  let caCertificates: string[] = [];
  let keyFile: string | undefined;
  if (options.provision) ({ caCertificates, keyFile } = await provisionSwtpm(dir));
  const swtpm = await SwtpmProcess.start({ tpmStateDir: join(dir, 'tpm'), listen: options.listen ?? 'unix', keyFile });
  const client = new TpmClient(swtpm.transport(), options.clientOptions);
  await client.startup('clear');
  return {
    dir, swtpm, client, caCertificates,
    async close() {
      await client.close().catch(() => undefined);
      await swtpm.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a tpm2-tools program against this swtpm (our client must have released the connection). */
export async function tpm2Tool(env: SwtpmEnv, program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  await env.client.close();
  return execFileP(program, args, { env: { ...process.env, TPM2TOOLS_TCTI: env.swtpm.tcti }, timeout: 30_000 });
}
