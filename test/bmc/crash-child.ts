// A BMC service process that dies by SIGKILL at a fault point of one anchor: the crash
// that test/bmc/crash.test.ts recovers from. Usage:
//   node crash-child.js STATE_DIR TPM_SOCKET pendingRecorded|extended SEQ
// It prints one JSON line {url, host, pin} once listening (pin: its TLS certificate's SHA-256). The TPM is an swtpm the parent
// runs, so it outlives this process as a BMC's TPM outlives a crash of the BMC service.
import { startBmcService } from '../../src/bmc/index.js';

const [stateDir, tpmSocket, point, seqText] = process.argv.slice(2);
if (!stateDir || !tpmSocket || (point !== 'pendingRecorded' && point !== 'extended') || !seqText) {
  process.stderr.write('usage: crash-child STATE_DIR TPM_SOCKET pendingRecorded|extended SEQ\n');
  process.exit(2);
}
const crashSeq = Number(seqText);
const crash = async (seq: number): Promise<void> => {
  if (seq !== crashSeq) return;
  process.kill(process.pid, 'SIGKILL');
  await new Promise(() => undefined); // never reached: the kernel ends the process
};
const service = await startBmcService({
  stateDir, host: '127.0.0.1', port: 0, source: { kind: 'swtpm-unix', path: tpmSocket },
  faults: { anchoring: { [point]: crash } },
});
process.stdout.write(JSON.stringify({ url: service.url, host: service.tokens.host, pin: service.tls?.fingerprintSha256 }) + '\n');
