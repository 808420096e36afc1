// SPDX-License-Identifier: GPL-2.0
/*
 * Process life cycle of container tasks: exec (with filename and argv), fork of a
 * new process (threads are left out) and exit of a whole process (its last thread).
 */
#include "common.h"
#include "paths.h"
#include "stdio_kind.h"

char LICENSE[] SEC("license") = "GPL";

_Static_assert(sizeof(struct vigil_exec) <= VIGIL_SCRATCH_SIZE, "an exec record is built in the scratch buffer");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct vigil_config *cfg = vigil_get_config();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	vigil_exec_in_container(task, cfg);
	/* A new program: its first use of each capability is reported again. */
	struct vigil_task_state *st = vigil_task_state(task);
	if (st) {
		st->caps_seen[0] = 0;
		st->caps_seen[1] = 0;
	}

	struct vigil_exec *e = vigil_scratch_buf();
	if (!e)
		return 0;
	vigil_fill_header(&e->hdr, VIGIL_KIND_EXEC, task, key);

	/* bprm, task and what hangs off them are BTF pointers: direct loads, not helper reads. */
	long n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	e->filename_len = n > 0 ? n - 1 : 0;

	/* The file the kernel executes, whatever name it was given (/proc/self/exe, an fd, a
	 * memfd): walked from its dentry up to the task's root. */
	e->exe_len = 0;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	struct file *file = bprm->file;
	if (work && file) {
		struct path fp = file->f_path;
		int cut = 0;
		e->exe_len = copy_path(work, &fp, task, e->exe, &cut);
		if (cut)
			e->hdr.flags |= VIGIL_FLAG_EXE_CUT;
	}

	/* The new program's standard streams: a shell reading a socket is a reverse shell. */
	vigil_fill_stdio(task, e->stdio);
	e->_pad1[0] = e->_pad1[1] = e->_pad1[2] = e->_pad1[3] = e->_pad1[4] = 0;

	/* argv lives at [arg_start, arg_end) of the new image's stack. */
	struct mm_struct *mm = task->mm;
	unsigned long start = mm->arg_start;
	unsigned long end = mm->arg_end;
	__u32 total = end > start ? end - start : 0;
	__u32 len = total;
	if (len > VIGIL_ARGS_MAX) {
		len = VIGIL_ARGS_MAX;
		e->hdr.flags |= VIGIL_FLAG_TRUNCATED;
	}
	e->args_total = total;
	e->args_len = 0;
	/* len is at most VIGIL_ARGS_MAX; the mask after the barrier restates that bound
	 * in the register the verifier checks (the scratch buffer has room for it). */
	barrier_var(len);
	len &= 2 * VIGIL_ARGS_MAX - 1;
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->args_len = len;
	e->env_len = 0;
	e->env_total = 0;

	/* The environment always crosses: user space keeps its variables' names and the values
	 * of a few that change what a program does (LD_PRELOAD, GLIBC_TUNABLES, proxies), and
	 * every value only with capture_env (values hold secrets). */
	__u32 size;
	{
		unsigned long env_start = mm->env_start;
		unsigned long env_end = mm->env_end;
		__u32 etotal = env_end > env_start ? env_end - env_start : 0;
		__u32 elen = etotal > VIGIL_ARGS_MAX ? VIGIL_ARGS_MAX : etotal;
		if (etotal > VIGIL_ARGS_MAX)
			e->hdr.flags |= VIGIL_FLAG_TRUNCATED;
		barrier_var(elen);
		elen &= 2 * VIGIL_ARGS_MAX - 1;
		e->env_total = etotal;
		if (elen > 0 && elen <= VIGIL_ARGS_MAX && bpf_probe_read_user(e->env, elen, (void *)env_start) == 0)
			e->env_len = elen;
		size = offsetof(struct vigil_exec, env) + e->env_len;
	}
	e->hdr.size = size;
	vigil_submit(e, size, VIGIL_KIND_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	struct vigil_config *cfg = vigil_get_config();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(parent, cfg, &key))
		return 0;
	vigil_remember_child(parent, child, key);
	/* A new thread shares its parent's tgid: only whole processes are reported. */
	if (child->pid != child->tgid)
		return 0;

	struct vigil_fork e = {};
	vigil_fill_header(&e.hdr, VIGIL_KIND_FORK, parent, key);
	e.hdr.size = sizeof(e);
	e.child_pid = child->pid;
	struct pid *cp = child->thread_pid;
	e.child_ns_pid = vigil_pid_in_own_ns(cp, cp->level);
	vigil_submit(&e, sizeof(e), VIGIL_KIND_FORK);
	return 0;
}

/*
 * The exit of a whole process: when its last thread exits (do_exit has counted it off
 * signal->live before this tracepoint), not its group leader. A leader that called
 * pthread_exit leaves the others running under the same tgid, with the same program:
 * until they are gone too, the process lives on, and user space keeps its identity.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *task)
{
	struct vigil_config *cfg = vigil_get_config();
	__u64 key;
	if (task->signal->live.counter != 0)
		return 0;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;

	struct vigil_exit e = {};
	vigil_fill_header(&e.hdr, VIGIL_KIND_EXIT, task, key);
	e.hdr.size = sizeof(e);
	e.exit_code = task->exit_code;
	vigil_submit(&e, sizeof(e), VIGIL_KIND_EXIT);
	return 0;
}
