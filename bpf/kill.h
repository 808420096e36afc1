/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Killing from the kernel: the process that made the call, and every process sharing its
 * memory or file table. Used by the allow-list check (allowlist.h) and the in-kernel kill
 * of rules (enforce.bpf.c).
 */
#ifndef VIGIL_KILL_H
#define VIGIL_KILL_H

#include "common.h"

extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task, unsigned int flags) __weak __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __weak __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __weak __ksym;
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __weak __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __weak __ksym;
extern void bpf_task_release(struct task_struct *p) __weak __ksym;

/*
 * The kill reaches every process that shares the killed one's memory or file table (clone
 * with CLONE_VM or CLONE_FILES but not CLONE_THREAD, vfork): bpf_send_signal ends only the
 * calling process, and a sharer would go on with what the call left in memory or in the
 * file table (a memfd). Rare (only at a kill); on a kernel without these kfuncs
 * (before 6.13 for bpf_send_signal_task) only the caller is killed.
 * A global function: verified once on its own, its loop does not multiply sys_enter's states.
 */
__noinline int vigil_kill_sharers(void)
{
	if (!bpf_send_signal_task || !bpf_iter_task_new || !bpf_task_acquire) /* weak: 0 where the kernel lacks them */
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	struct files_struct *files = task->files;
	struct bpf_iter_task it;
	struct task_struct *p;
	bpf_iter_task_new(&it, NULL, BPF_TASK_ITER_ALL_PROCS);
	/* An open-coded iterator: the kernel bounds it (every process once); no counter, which the
	 * verifier would follow value by value. */
	while ((p = bpf_iter_task_next(&it))) {
		if (p->tgid == task->tgid)
			continue;
		if ((mm && p->mm == mm) || (files && p->files == files)) {
			/* The signal needs a counted reference; the iterator's is RCU-protected only. */
			struct task_struct *ref = bpf_task_acquire(p);
			if (ref) {
				bpf_send_signal_task(ref, 9, PIDTYPE_TGID, 0);
				bpf_task_release(ref);
			}
		}
	}
	bpf_iter_task_destroy(&it);
	return 0;
}

#endif
