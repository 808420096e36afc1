// Decodes the binary records of bpf/events.h into RawRecord values. A record that is
// shorter than its kind needs, or whose declared size disagrees with the bytes that
// came, is reported as a DecodeError and skipped: one bad record never stops a batch.
import { ARGS_MAX, COMM_LEN, EXEC_LAYOUT, EXIT_LAYOUT, FILENAME_MAX, FLAG_TRUNCATED, FORK_LAYOUT, HEADER_LAYOUT, RECORD_KIND } from './layout.js';
import type { RawRecord, TaskContext } from './model.js';

export class DecodeError extends Error {
  readonly code = 'VIGIL_BAD_RECORD';
  constructor(message: string, readonly offset: number) {
    super(message);
    this.name = 'DecodeError';
  }
}

function cString(buf: Buffer, start: number, max: number): string {
  const end = buf.indexOf(0, start);
  const stop = end < 0 || end > start + max ? start + max : end;
  return buf.toString('utf8', start, stop);
}

export function decodeTask(buf: Buffer, o: number): TaskContext {
  const H = HEADER_LAYOUT;
  return {
    timeNs: buf.readBigUInt64LE(o + H.time_ns),
    pid: buf.readUInt32LE(o + H.pid),
    tgid: buf.readUInt32LE(o + H.tgid),
    nsPid: buf.readUInt32LE(o + H.ns_pid),
    ppid: buf.readUInt32LE(o + H.ppid),
    nsPpid: buf.readUInt32LE(o + H.ns_ppid),
    uid: buf.readUInt32LE(o + H.uid),
    gid: buf.readUInt32LE(o + H.gid),
    mntNs: buf.readUInt32LE(o + H.mnt_ns),
    pidNs: buf.readUInt32LE(o + H.pid_ns),
    capEffective: buf.readBigUInt64LE(o + H.cap_effective),
    cgroupId: buf.readBigUInt64LE(o + H.cgroup_id),
    containerKey: buf.readBigUInt64LE(o + H.container_key),
    comm: cString(buf, o + H.comm, COMM_LEN),
    parentComm: cString(buf, o + H.parent_comm, COMM_LEN),
    truncated: (buf.readUInt16LE(o + H.flags) & FLAG_TRUNCATED) !== 0,
  };
}

/** Decodes one record that occupies buf[o, o+len). */
export function decodeRecord(buf: Buffer, o: number, len: number): RawRecord {
  if (len < HEADER_LAYOUT.size) throw new DecodeError(`record of ${len} bytes is shorter than the ${HEADER_LAYOUT.size}-byte header`, o);
  const kind = buf.readUInt16LE(o + HEADER_LAYOUT.kind);
  const declared = buf.readUInt32LE(o + HEADER_LAYOUT.size_field);
  if (declared !== len) throw new DecodeError(`record of kind ${kind} declares ${declared} bytes but ${len} arrived`, o);
  const need = (n: number) => {
    if (len < n) throw new DecodeError(`record of kind ${kind} has ${len} bytes, needs ${n}`, o);
  };
  const task = decodeTask(buf, o);
  switch (kind) {
    case RECORD_KIND.EXEC: {
      need(EXEC_LAYOUT.args);
      const fnLen = Math.min(buf.readUInt32LE(o + EXEC_LAYOUT.filename_len), FILENAME_MAX - 1);
      const argsLen = buf.readUInt32LE(o + EXEC_LAYOUT.args_len);
      const argsTotal = buf.readUInt32LE(o + EXEC_LAYOUT.args_total);
      if (argsLen > ARGS_MAX || EXEC_LAYOUT.args + argsLen > len) throw new DecodeError(`exec record carries ${argsLen} argv bytes, more than its size allows`, o);
      const filename = buf.toString('utf8', o + EXEC_LAYOUT.filename, o + EXEC_LAYOUT.filename + fnLen);
      const argvBytes = buf.subarray(o + EXEC_LAYOUT.args, o + EXEC_LAYOUT.args + argsLen);
      const argv = argvBytes.toString('utf8').split('\0');
      if (argv.length > 0 && argv[argv.length - 1] === '') argv.pop();
      return { kind: 'exec', task, filename, argv, argvTruncated: argsTotal > argsLen || task.truncated };
    }
    case RECORD_KIND.FORK:
      need(FORK_LAYOUT.size);
      return { kind: 'fork', task, childPid: buf.readUInt32LE(o + FORK_LAYOUT.child_pid), childNsPid: buf.readUInt32LE(o + FORK_LAYOUT.child_ns_pid) };
    case RECORD_KIND.EXIT: {
      need(EXIT_LAYOUT.size);
      const status = buf.readInt32LE(o + EXIT_LAYOUT.exit_code);
      return { kind: 'exit', task, exitCode: (status >> 8) & 0xff, signal: status & 0x7f };
    }
    default:
      throw new DecodeError(`unknown record kind ${kind}`, o);
  }
}

/**
 * Splits a batch from the ring-buffer drain (records laid end to end, each starting
 * with its header) and decodes each one.
 */
export function decodeBatch(buf: Buffer, onRecord: (r: RawRecord) => void, onError: (e: DecodeError) => void): void {
  let o = 0;
  while (o + HEADER_LAYOUT.size <= buf.length) {
    const len = buf.readUInt32LE(o + HEADER_LAYOUT.size_field);
    if (len < HEADER_LAYOUT.size || o + len > buf.length) {
      onError(new DecodeError(`record at byte ${o} declares ${len} bytes, beyond the batch of ${buf.length}`, o));
      return;
    }
    try {
      onRecord(decodeRecord(buf, o, len));
    } catch (e) {
      if (e instanceof DecodeError) onError(e);
      else throw e;
    }
    o += len;
  }
  if (o !== buf.length) onError(new DecodeError(`${buf.length - o} stray bytes at the end of a batch`, o));
}
