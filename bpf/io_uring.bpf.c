// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring: what a container does through a ring. Requests submitted through a ring
 * are carried out by the kernel without passing sys_enter or sys_exit, so the system
 * call programs never see them. This object reports, for watched tasks:
 *   - every ring made (io_uring:io_uring_create) and every io_uring_register call;
 *   - every request that names a file or an address, or makes a socket (open, openat2,
 *     unlink, rename, mkdir, symlink, link, connect, bind, listen, accept, socket), at
 *     submission (io_uring:io_uring_submit_req, which fires after the request was
 *     prepared: the name is the kernel's copy, the address too).
 * Reads, writes and the rest of the data path are not reported: a ring made in a
 * container is itself reported (and judged by the default policy), so their use is not
 * hidden, and reporting each would be a flood.
 */
#include "common.h"
#include "paths.h"

char LICENSE[] SEC("license") = "GPL";

_Static_assert(sizeof(struct vigil_io_uring) <= VIGIL_SCRATCH_SIZE, "an io_uring record is built in the scratch buffer");

#define VIGIL_PF_IO_WORKER 0x00000010 /* an io_uring worker or SQPOLL thread (include/linux/sched.h) */
#define VIGIL_AT_FDCWD -100

/*
 * The ring's kernel threads (SQPOLL, io-wq workers) are made with create_io_thread, which
 * fires no sched_process_fork: vigil_watched would meet them as new tasks, and take them
 * for the runtime setting up the container. They belong to the process that owns the
 * ring, so they take its leader's state first.
 */
static __always_inline int vigil_uring_watched(struct task_struct *task, struct vigil_config *cfg, __u64 *key)
{
	if ((task->flags & VIGIL_PF_IO_WORKER) && !vigil_task_state(task)) {
		struct task_struct *leader = task->group_leader;
		struct vigil_task_state *ls = leader ? vigil_task_state(leader) : NULL;
		if (ls)
			vigil_remember_child(leader, task, ls->key);
	}
	return vigil_watched(task, cfg, key);
}

static __always_inline struct vigil_io_uring *vigil_uring_start(struct task_struct *task, __u64 key, __u32 op)
{
	struct vigil_io_uring *e = vigil_scratch_buf();
	if (!e)
		return NULL;
	vigil_fill_header(&e->hdr, VIGIL_KIND_IO_URING, task, key);
	e->op = op;
	e->fd = -1;
	e->arg0 = e->arg1 = e->arg2 = 0;
	e->ret = 0;
	e->name_len = e->name2_len = e->base_len = e->addr_len = 0;
	e->uflags = (task->flags & VIGIL_PF_IO_WORKER) ? VIGIL_URING_F_SQPOLL : 0;
	e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
	return e;
}

static __always_inline void vigil_uring_send(struct vigil_io_uring *e)
{
	__u32 size = offsetof(struct vigil_io_uring, data) + e->name_len + e->name2_len + e->base_len + e->addr_len;
	if (size > sizeof(*e))
		return;
	e->hdr.size = size;
	vigil_submit(e, size, VIGIL_KIND_IO_URING);
}

/* Copies the kernel's copy of a name (struct filename) to data[at...]; returns its length. */
static __always_inline __u16 vigil_uring_name(struct vigil_io_uring *e, __u32 at, struct filename *fn)
{
	if (!fn || at > VIGIL_STR_MAX)
		return 0;
	const char *name = BPF_CORE_READ(fn, name);
	long n = bpf_probe_read_kernel_str(&e->data[at & VIGIL_STR_MAX], VIGIL_STR_MAX, name);
	if (n <= 0)
		return 0;
	if (n >= VIGIL_STR_MAX)
		e->uflags |= VIGIL_URING_F_NAME_CUT;
	return (n - 1) & (VIGIL_STR_MAX - 1);
}

/*
 * The directory a relative first name is relative to: the task's working directory for
 * AT_FDCWD, else the directory fd's path, placed after both names.
 */
static __always_inline void vigil_uring_base(struct vigil_io_uring *e, struct task_struct *task, int dfd)
{
	if (e->name_len > 0 && e->data[0] == '/')
		return;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work)
		return;
	struct path p;
	if (dfd == VIGIL_AT_FDCWD) {
		p = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *f = vigil_fd_file(task, dfd);
		if (!f)
			return;
		p = BPF_CORE_READ(f, f_path);
	}
	__u32 at = e->name_len + e->name2_len;
	if (at > 2 * VIGIL_STR_MAX)
		return;
	int cut = 0;
	e->base_len = copy_path(work, &p, task, &e->data[at & (2 * VIGIL_STR_MAX - 1)], &cut);
	if (cut)
		e->uflags |= VIGIL_URING_F_BASE_CUT;
}

SEC("tp_btf/io_uring_create")
int BPF_PROG(vigil_uring_create, int fd, void *ring, u32 sq_entries, u32 cq_entries, u32 flags)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_uring_watched(task, cfg, &key))
		return 0;
	struct vigil_io_uring *e = vigil_uring_start(task, key, VIGIL_URING_SETUP);
	if (!e)
		return 0;
	e->fd = fd;
	e->arg0 = sq_entries;
	e->arg1 = cq_entries;
	e->arg2 = flags;
	vigil_uring_send(e);
	return 0;
}

SEC("tp_btf/io_uring_register")
int BPF_PROG(vigil_uring_register, void *ring, unsigned int opcode, unsigned int nr_files, unsigned int nr_bufs, long ret)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_uring_watched(task, cfg, &key))
		return 0;
	struct vigil_io_uring *e = vigil_uring_start(task, key, VIGIL_URING_REGISTER);
	if (!e)
		return 0;
	e->arg0 = opcode;
	e->arg1 = nr_files;
	e->arg2 = nr_bufs;
	e->ret = ret;
	vigil_uring_send(e);
	return 0;
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(vigil_uring_submit, struct io_kiocb *req)
{
	__u8 op = req->opcode;
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2:
	case IORING_OP_UNLINKAT:
	case IORING_OP_RENAMEAT:
	case IORING_OP_MKDIRAT:
	case IORING_OP_SYMLINKAT:
	case IORING_OP_LINKAT:
	case IORING_OP_CONNECT:
	case IORING_OP_BIND:
	case IORING_OP_LISTEN:
	case IORING_OP_ACCEPT:
	case IORING_OP_SOCKET:
		break;
	default:
		return 0; /* the data path: reads, writes, polls, timeouts */
	}
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_uring_watched(task, cfg, &key))
		return 0;
	struct vigil_io_uring *e = vigil_uring_start(task, key, op);
	if (!e)
		return 0;
	/* The request's fd, as the sqe gave it (io_init_req keeps it in cqe.fd). */
	e->fd = BPF_CORE_READ(req, cqe.fd);
	void *cmd = &req->cmd;
	int dfd = VIGIL_AT_FDCWD;
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = cmd;
		dfd = BPF_CORE_READ(o, dfd);
		e->fd = dfd;
		e->arg0 = BPF_CORE_READ(o, how.flags);
		e->arg1 = BPF_CORE_READ(o, how.mode);
		e->name_len = vigil_uring_name(e, 0, BPF_CORE_READ(o, filename));
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *u = cmd;
		dfd = BPF_CORE_READ(u, dfd);
		e->fd = dfd;
		e->arg0 = BPF_CORE_READ(u, flags);
		e->name_len = vigil_uring_name(e, 0, BPF_CORE_READ(u, filename));
		break;
	}
	case IORING_OP_MKDIRAT: {
		struct io_mkdir *m = cmd;
		dfd = BPF_CORE_READ(m, dfd);
		e->fd = dfd;
		e->arg0 = BPF_CORE_READ(m, mode);
		e->name_len = vigil_uring_name(e, 0, BPF_CORE_READ(m, filename));
		break;
	}
	case IORING_OP_RENAMEAT: {
		struct io_rename *r = cmd;
		dfd = BPF_CORE_READ(r, old_dfd);
		e->fd = dfd;
		e->arg0 = BPF_CORE_READ(r, flags);
		e->arg1 = (__u64)(__s64)BPF_CORE_READ(r, new_dfd);
		e->name_len = vigil_uring_name(e, 0, BPF_CORE_READ(r, oldpath));
		e->name2_len = vigil_uring_name(e, e->name_len, BPF_CORE_READ(r, newpath));
		break;
	}
	case IORING_OP_LINKAT:
	case IORING_OP_SYMLINKAT: {
		/* symlinkat: oldpath is the link's target (any text), newpath the link made at new_dfd. */
		struct io_link *l = cmd;
		dfd = op == IORING_OP_LINKAT ? BPF_CORE_READ(l, old_dfd) : VIGIL_AT_FDCWD;
		e->fd = dfd;
		e->arg0 = BPF_CORE_READ(l, flags);
		e->arg1 = (__u64)(__s64)BPF_CORE_READ(l, new_dfd);
		e->name_len = vigil_uring_name(e, 0, BPF_CORE_READ(l, oldpath));
		e->name2_len = vigil_uring_name(e, e->name_len, BPF_CORE_READ(l, newpath));
		break;
	}
	case IORING_OP_SOCKET: {
		struct io_socket *s = cmd;
		e->arg0 = BPF_CORE_READ(s, domain);
		e->arg1 = BPF_CORE_READ(s, type);
		e->arg2 = BPF_CORE_READ(s, protocol);
		break;
	}
	case IORING_OP_CONNECT:
	case IORING_OP_BIND: {
		/*
		 * Prepared: the kernel's copy of the address is in the request's async data. Its
		 * place differs between kernels: BTF names struct io_async_msghdr (addr after the
		 * msghdr), but on 6.18 the copy was found at the start of the async data (a bare
		 * sockaddr_storage). The start is taken when it holds an AF_UNIX, AF_INET or
		 * AF_INET6 family (where io_async_msghdr has an aligned pointer or NULL), else
		 * io_async_msghdr.addr. Both are kernel memory: the user cannot steer the choice
		 * after submission.
		 */
		void *io = BPF_CORE_READ(req, async_data);
		int alen = op == IORING_OP_CONNECT ? BPF_CORE_READ((struct io_connect *)cmd, addr_len)
						   : BPF_CORE_READ((struct io_bind *)cmd, addr_len);
		if (io && alen > 0) {
			__u16 family = 0;
			bpf_probe_read_kernel(&family, sizeof(family), io);
			void *from = io;
			if (family != 1 && family != VIGIL_AF_INET && family != VIGIL_AF_INET6)
				from = (void *)&((struct io_async_msghdr *)io)->addr;
			__u32 n = alen > VIGIL_BLOB_MAX ? VIGIL_BLOB_MAX : alen;
			barrier_var(n);
			n &= 2 * VIGIL_BLOB_MAX - 1;
			if (n > 0 && n <= VIGIL_BLOB_MAX && bpf_probe_read_kernel(e->data, n, from) == 0)
				e->addr_len = n;
		}
		break;
	}
	default:
		break; /* listen, accept: the fd alone */
	}
	if (op != IORING_OP_CONNECT && op != IORING_OP_BIND && op != IORING_OP_SOCKET && op != IORING_OP_LISTEN &&
	    op != IORING_OP_ACCEPT)
		vigil_uring_base(e, task, dfd);
	vigil_uring_send(e);
	return 0;
}
