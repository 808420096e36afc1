// Messages between the drain worker and the main thread.
export interface DrainWorkerData {
  mapFd: number;
  batchBytes: number;
  pollMs: number;
  maxInFlight: number;
  control: SharedArrayBuffer; // Int32Array indexed by CONTROL
}

export const CONTROL = { STOP: 0, IN_FLIGHT: 1 } as const;

export type DrainMessage =
  | { type: 'batch'; records: ArrayBuffer; count: number }
  | { type: 'error'; message: string }
  | { type: 'stopped' };
