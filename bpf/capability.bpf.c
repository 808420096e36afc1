// SPDX-License-Identifier: GPL-2.0
/*
 * Capability checks made by container tasks (capability:cap_capable), with the
 * capability and whether it was granted. With cap_dedup on, a process reports each
 * (capability, outcome) pair once per exec: the first use is what a policy needs, and a
 * root shell checks CAP_DAC_OVERRIDE on nearly every file it touches.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * A container process makes a handful of checks per program (the kernel's own probes:
 * CAP_SYS_ADMIN at every exec and mmap), nearly all of them repeats, and every host
 * task's checks pass here too. So the checks run cheapest first, each a few direct
 * loads: borrowed credentials; a host task (no task storage, the host's mount
 * namespace); a (capability, outcome) this process has reported since its last exec.
 * Only a check that passes all three pays for vigil_watched and a record.
 */
SEC("tp_btf/cap_capable")
int BPF_PROG(vigil_cap_capable, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	/* Checks made with borrowed credentials (overlayfs copy-up uses the mounter's) are
	 * the kernel acting for itself, not the container process using its capabilities. */
	if (cred != task->real_cred)
		return 0;
	struct vigil_config *cfg = vigil_get_config();
	if (!cfg || !cfg->enabled)
		return 0;
	/* The test vigil_watched starts with, without its calls: a host task that was never
	 * remembered is the host's. */
	struct nsproxy *nsp = task->nsproxy;
	int no_storage = bpf_core_field_exists(task->bpf_storage) && !task->bpf_storage;
	if (!nsp || (no_storage && nsp->mnt_ns->ns.inum == cfg->host_mnt_ns))
		return 0;
	/* Kept with the process (its group leader's task storage, or the thread's own when the
	 * leader has none: storage is never created for a leader that may be a host task): it
	 * dies with the task, so a reused pid starts clean, and an exec clears it. */
	struct vigil_task_state *st = NULL;
	__u64 bit = 0;
	int dedup = cfg->cap_dedup && cap >= 0 && cap < 64;
	if (dedup) {
		bit = 1ULL << (cap & 63);
		st = vigil_task_state(task->group_leader);
		if (!st)
			st = vigil_task_state(task);
		/* A repeat is dropped before anything else: watched or not, it would send nothing. */
		if (st && (st->caps_seen[ret ? 1 : 0] & bit))
			return 0;
	}
	__u64 key;
	if (!vigil_watched(task, cfg, &key))
		return 0;
	if (dedup) {
		/* vigil_watched may just have made the thread's storage. */
		if (!st)
			st = vigil_task_state(task->group_leader) ?: vigil_task_state(task);
		/* Two threads checking at once: only the first to set the bit reports. */
		if (st && (__sync_fetch_and_or(&st->caps_seen[ret ? 1 : 0], bit) & bit))
			return 0;
	}
	struct vigil_capability e = {};
	vigil_fill_header(&e.hdr, VIGIL_KIND_CAPABILITY, task, key);
	e.hdr.size = sizeof(e);
	e.cap = cap;
	e.ret = ret;
	vigil_submit(&e, sizeof(e), VIGIL_KIND_CAPABILITY);
	return 0;
}
