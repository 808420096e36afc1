// SPDX-License-Identifier: GPL-2.0
/*
 * Every new cgroup of the reference hierarchy (the one containers are keyed by: v2
 * unified, or the v1 memory one; vigil_config.cgroup_mode), with its kernfs id (the
 * future container key) and path, in kernel order: user space learns a container's
 * identity before its first task runs, so a container that is gone before the agent
 * catches up (a backlog) keeps its id. Runs for every cgroup made on the host; one in
 * another hierarchy returns after two loads.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(vigil_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct vigil_config *cfg = vigil_get_config();
	if (!cfg || !cfg->enabled)
		return 0;
	struct cgroup_root *root = cgrp->root;
	if (cfg->cgroup_mode == VIGIL_CGROUP_V1_MEMORY) {
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (root->hierarchy_id == 0 || !(root->subsys_mask & (1u << (id & 31))))
			return 0;
	} else if (root->hierarchy_id != 0) {
		return 0; /* the default (v2) hierarchy is number 0, as /proc/PID/cgroup shows */
	}
	struct vigil_cgroup *e = vigil_scratch_buf();
	if (!e)
		return 0;
	__u64 kid = cgrp->kn->id;
	__builtin_memset(&e->hdr, 0, sizeof(e->hdr));
	e->hdr.kind = VIGIL_KIND_CGROUP;
	e->hdr.time_ns = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->hdr.pid = (__u32)pid_tgid; /* the task that made the cgroup (runc, systemd) */
	e->hdr.tgid = pid_tgid >> 32;
	e->hdr.container_key = kid;
	bpf_get_current_comm(e->hdr.comm, sizeof(e->hdr.comm));
	e->id = kid;
	e->level = cgrp->level;
	long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	if (n <= 0)
		n = 1, e->path[0] = 0;
	if (n >= sizeof(e->path))
		e->hdr.flags |= VIGIL_FLAG_TRUNCATED;
	e->path_len = n - 1; /* without the NUL */
	/* Only the used bytes of path are sent, rounded up to 8. */
	__u32 size = (offsetof(struct vigil_cgroup, path) + e->path_len + 7) & ~7u;
	if (size > sizeof(*e))
		size = sizeof(*e);
	e->hdr.size = size;
	vigil_submit(e, size, VIGIL_KIND_CGROUP);
	return 0;
}
