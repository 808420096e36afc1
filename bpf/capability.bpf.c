// SPDX-License-Identifier: GPL-2.0
/*
 * Capability checks made by container tasks (capability:cap_capable), with the
 * capability and whether it was granted. With cap_dedup on, a process reports each
 * (capability, outcome) pair once: the first use is what a policy needs, and a
 * root shell checks CAP_DAC_OVERRIDE on nearly every file it touches.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct cap_seen_key {
	__u32 tgid;
	__s32 cap;
	__s32 ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cap_seen_key);
	__type(value, __u8);
} vigil_cap_seen SEC(".maps");

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
	if (cfg->cap_dedup) {
		struct cap_seen_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .cap = cap, .ret = ret };
		__u8 one = 1;
		if (bpf_map_update_elem(&vigil_cap_seen, &k, &one, BPF_NOEXIST) != 0)
			return 0; /* seen already */
	}
	struct vigil_capability e = {};
	vigil_fill_header(&e.hdr, VIGIL_KIND_CAPABILITY, task, key);
	e.hdr.size = sizeof(e);
	e.cap = cap;
	e.ret = ret;
	vigil_submit(&e, sizeof(e), VIGIL_KIND_CAPABILITY);
	return 0;
}
