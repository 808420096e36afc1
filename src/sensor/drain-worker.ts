// Worker thread: polls the kernel ring buffer through libbpf and posts batches of
// raw records (laid end to end) to the main thread, so the event loop never blocks
// in ring_buffer__poll. When the main thread falls behind (too many batches in
// flight) it stops polling: the kernel ring buffer then fills and the BPF side
// counts what it drops, so loss is visible rather than hidden in Node's heap.
import { parentPort, workerData } from 'node:worker_threads';
import { koffi, libbpf, libbpfError } from './libbpf.js';
import type { DrainWorkerData, DrainMessage } from './drain-protocol.js';
import { CONTROL } from './drain-protocol.js';

const data = workerData as DrainWorkerData;
const control = new Int32Array(data.control);
const port = parentPort;
if (!port) throw new Error('drain-worker must run as a worker thread');

const { lib, sampleProto } = libbpf();
let batch = new Uint8Array(data.batchBytes);
let used = 0;
let count = 0;

function flush(): void {
  if (used === 0) return;
  const out = batch.slice(0, used);
  const msg: DrainMessage = { type: 'batch', records: out.buffer, count };
  Atomics.add(control, CONTROL.IN_FLIGHT, 1);
  port!.postMessage(msg, [out.buffer]);
  used = 0;
  count = 0;
}

const onSample = koffi.register((_ctx: unknown, ptr: unknown, size: number | bigint): number => {
  const n = Number(size);
  if (used + n > batch.length) {
    // One poll reads for as long as records keep coming (libbpf loops until the ring is
    // empty), so under a sustained flood it never returns and the bound on batches in
    // flight must be kept here too: past it the callback waits for the main thread. libbpf
    // publishes the consumer position only after the callback returns, so meanwhile the
    // kernel's ring fills and its budget acts, instead of batches piling up in the main
    // thread's queue (an agent grew to 10 GB and wrote a record 12 minutes late so).
    // Not a negative return: libbpf 1.1 (Debian 12) has already counted the record as
    // consumed then, and it would be lost without a trace.
    for (let n = Atomics.load(control, CONTROL.IN_FLIGHT); n >= data.maxInFlight; n = Atomics.load(control, CONTROL.IN_FLIGHT)) {
      Atomics.wait(control, CONTROL.IN_FLIGHT, n, 20);
    }
    flush();
    if (n > batch.length) batch = new Uint8Array(n);
  }
  batch.set(new Uint8Array(koffi.view(ptr, n)), used);
  used += n;
  count++;
  return 0;
}, koffi.pointer(sampleProto));

const rb = lib.ring_buffer__new(data.mapFd, onSample, null, null);
if (!rb) {
  const msg: DrainMessage = { type: 'error', message: `cannot open the event ring buffer: ${libbpfError(koffi.errno())}` };
  port.postMessage(msg);
} else {
  const EINTR = 4;
  while (Atomics.load(control, CONTROL.STOP) === 0) {
    const inFlight = Atomics.load(control, CONTROL.IN_FLIGHT);
    if (inFlight >= data.maxInFlight) {
      Atomics.wait(control, CONTROL.IN_FLIGHT, inFlight, 20);
      continue;
    }
    let rc = lib.ring_buffer__poll(rb, data.pollMs);
    // The kernel wakes the reader only once a batch's worth is unread (vigil_submit):
    // records below that mark are read here when the poll times out, so a quiet
    // container's record waits at most pollMs.
    if (rc === 0) rc = lib.ring_buffer__consume(rb);
    if (rc < 0 && -rc !== EINTR) {
      const msg: DrainMessage = { type: 'error', message: `ring buffer poll failed: ${libbpfError(rc)}` };
      port.postMessage(msg);
      break;
    }
    flush();
  }
  // Drain what is left so records accepted before stop are not lost.
  // consume, not poll: records queued without a wakeup raise no epoll event.
  // The in-flight bound holds here too (the callback waits for the main thread).
  lib.ring_buffer__consume(rb);
  flush();
  lib.ring_buffer__free(rb);
}
koffi.unregister(onSample);
const done: DrainMessage = { type: 'stopped' };
port.postMessage(done);
