// Linux capability numbers (include/uapi/linux/capability.h) and their names.
export const CAPABILITY_NAMES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW',
  'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT',
  'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD',
  'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG',
  'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

export function capabilityName(n: number): string {
  return CAPABILITY_NAMES[n] ?? `CAP_${n}`;
}

const namesByMask = new Map<bigint, readonly string[]>();

/**
 * Names of the capabilities set in a 64-bit capability mask, lowest first. A host sees
 * a handful of distinct masks, so each is worked out once; callers must not mutate the
 * returned list.
 */
export function capabilityNames(mask: bigint): readonly string[] {
  let names = namesByMask.get(mask);
  if (!names) {
    const out: string[] = [];
    for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(capabilityName(i));
    names = Object.freeze(out);
    if (namesByMask.size < 4096) namesByMask.set(mask, names);
  }
  return names;
}
