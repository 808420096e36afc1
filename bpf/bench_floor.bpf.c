// SPDX-License-Identifier: GPL-2.0
/*
 * Empty sys_enter/sys_exit programs, loaded only by bench/pipeline: what any syscall
 * tracepoint monitor costs a host process before its programs do anything, so the
 * benchmark can tell the kernel's share of the overhead from vigil's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_floor_enter, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_floor_exit, struct pt_regs *regs, long ret)
{
	return 0;
}
