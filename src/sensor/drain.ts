// Main-thread side of the ring-buffer drain: starts the worker, hands each batch to
// the consumer and acknowledges it, so the worker's flow control sees progress.
import { Worker } from 'node:worker_threads';
import { CONTROL, type DrainMessage, type DrainWorkerData } from './drain-protocol.js';
import { SensorError } from './errors.js';

/**
 * How long the worker waits for a wakeup before it reads the ring anyway: the longest a
 * record below the kernel's wakeup mark (vigil_submit) waits to be read.
 */
export const DEFAULT_POLL_MS = 20;

export interface DrainOptions {
  batchBytes?: number;
  pollMs?: number;
  maxInFlight?: number;
}

/**
 * Handles one batch. Returning a promise holds the acknowledgement until it settles:
 * a consumer whose outputs are backed up slows the worker, the kernel ring buffer
 * fills, and the BPF side counts what it drops, instead of Node's heap growing.
 */
export type BatchHandler = (records: Buffer, count: number) => void | Promise<void>;

export class RingBufferDrain {
  private readonly worker: Worker;
  private readonly control = new SharedArrayBuffer(8);
  private readonly stopped: Promise<void>;
  private failure: SensorError | undefined;
  recordsReceived = 0;

  constructor(mapFd: number, onBatch: BatchHandler, opts: DrainOptions = {}, onError?: (e: SensorError) => void) {
    const data: DrainWorkerData = {
      mapFd,
      batchBytes: opts.batchBytes ?? 1 << 20,
      pollMs: opts.pollMs ?? DEFAULT_POLL_MS,
      maxInFlight: opts.maxInFlight ?? 64,
      control: this.control,
    };
    const ctl = new Int32Array(this.control);
    this.worker = new Worker(new URL('./drain-worker.js', import.meta.url), { workerData: data });
    this.stopped = new Promise((resolve) => {
      this.worker.on('message', (msg: DrainMessage) => {
        if (msg.type === 'batch') {
          const ack = () => {
            Atomics.sub(ctl, CONTROL.IN_FLIGHT, 1);
            Atomics.notify(ctl, CONTROL.IN_FLIGHT);
          };
          this.recordsReceived += msg.count;
          let pending: void | Promise<void>;
          try {
            pending = onBatch(Buffer.from(msg.records), msg.count);
          } catch (e) {
            ack();
            throw e;
          }
          if (pending) pending.then(ack, ack);
          else ack();
        } else if (msg.type === 'error') {
          this.failure = new SensorError('VIGIL_RING_BUFFER', msg.message);
          onError?.(this.failure);
        } else {
          resolve();
        }
      });
      this.worker.on('error', (err) => {
        this.failure = new SensorError('VIGIL_RING_BUFFER', `ring buffer worker failed: ${err.message}`);
        onError?.(this.failure);
        resolve();
      });
      this.worker.on('exit', () => resolve());
    });
  }

  /** Stops polling after draining what the kernel already holds. */
  async stop(): Promise<void> {
    const ctl = new Int32Array(this.control);
    Atomics.store(ctl, CONTROL.STOP, 1);
    Atomics.notify(ctl, CONTROL.IN_FLIGHT);
    await this.stopped;
    await this.worker.terminate();
  }
}
