// Errors of the sensor: each says what is wrong and what to do about it.
export type SensorErrorCode =
  | 'VIGIL_NO_BTF'
  | 'VIGIL_KERNEL_TOO_OLD'
  | 'VIGIL_NO_PRIVILEGE'
  | 'VIGIL_BPF_OBJECT_MISSING'
  | 'VIGIL_BPF_OPEN'
  | 'VIGIL_BPF_LOAD'
  | 'VIGIL_BPF_ATTACH'
  | 'VIGIL_BPF_MAP'
  | 'VIGIL_RING_BUFFER'
  | 'VIGIL_LIBBPF_MISSING';

export class SensorError extends Error {
  /** errno: the system's error number, where the failure has one. */
  constructor(readonly code: SensorErrorCode, message: string, readonly errno?: number) {
    super(message);
    this.name = 'SensorError';
  }
}
