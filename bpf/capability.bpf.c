// SPDX-License-Identifier: GPL-2.0
/*
 * Capability checks made by container tasks (capability:cap_capable), with the
 * capability and whether it was granted. With cap_dedup on, a process reports each
 * (capability, outcome) pair once per exec: the first use is what a policy needs, and a
 * root shell checks CAP_DAC_OVERRIDE on nearly every file it touches.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/cap_capable")
int BPF_PROG(vigil_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	/* Checks made with borrowed credentials (overlayfs copy-up uses the mounter's) are
	 * the kernel acting for itself, not the container process using its capabilities. */
	if (cred != BPF_CORE_READ(task, real_cred))
		return 0;
	if (cfg->cap_dedup && cap >= 0 && cap < 64) {
		/* Kept with the process (its group leader's task storage, or the thread's own
		 * when the leader has none: storage is never created for a leader that may be a
		 * host task): it dies with the task, so a reused pid starts clean, and an exec
		 * clears it. */
		struct vigil_task_state *st = vigil_task_state(task->group_leader);
		if (!st)
			st = vigil_task_state(task);
		if (st) {
			__u64 bit = 1ULL << cap;
			__u64 before = __sync_fetch_and_or(&st->caps_seen[ret ? 1 : 0], bit);
			if (before & bit)
				return 0; /* seen already */
		}
	}
	struct vigil_capability e = {};
	vigil_fill_header(&e.hdr, VIGIL_KIND_CAPABILITY, task, key);
	e.hdr.size = sizeof(e);
	e.cap = cap;
	e.ret = ret;
	vigil_submit(&e, sizeof(e), VIGIL_KIND_CAPABILITY);
	return 0;
}
