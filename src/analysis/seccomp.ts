// The allow-list as a Docker/OCI seccomp profile: everything not listed fails with EPERM
// (Docker's own default errno), the list is one SCMP_ACT_ALLOW rule. Only x86-64 is listed:
// the analysis read x86-64 code, so a 32-bit (int 0x80) system call gets the default action.
import type { AnalysisResult } from './analyze.js';

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; comment?: string }[];
}

export function seccompProfile(result: AnalysisResult): SeccompProfile {
  if (result.allowAll) {
    // Fail-open with unresolved sites: the list is known to be incomplete, so nothing is refused.
    return { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1, architectures: ['SCMP_ARCH_X86_64'], syscalls: [] };
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: result.syscalls, action: 'SCMP_ACT_ALLOW', comment: `vigil analyze ${result.image.ref} (${result.image.id})` }],
  };
}
