/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * What a task's standard streams are (VIGIL_STDIO_*): shared by the exec record
 * (process.bpf.c) and the in-kernel enforcement (enforce.bpf.c), so both read fds 0-2
 * the same way. (Not named stdio.h: with -I bpf, as the layout probe builds, that name
 * would shadow the C library's.)
 */
#ifndef VIGIL_STDIO_KIND_H
#define VIGIL_STDIO_KIND_H

#include "common.h"

#define VIGIL_S_IFREG 0100000
#define VIGIL_S_IFDIR 0040000
#define VIGIL_S_IFCHR 0020000
#define VIGIL_S_IFIFO 0010000
#define VIGIL_AF_UNIX 1
#define VIGIL_MINORBITS 20           /* the kernel's dev_t: major << 20 | minor */
#define VIGIL_ANON_INODE_FS_MAGIC 0x09041934
#define VIGIL_PID_FS_MAGIC 0x50494446
#define VIGIL_NSFS_MAGIC 0x6e736673

/*
 * What an open file is, as a standard stream (VIGIL_STDIO_*). Two to four reads: the
 * inode and its mode, then what the type needs (the device number, the socket's family,
 * or the file system's magic: pidfs and nsfs inodes are S_IFREG inside the kernel, as
 * seen on 6.18, though fstat shows a pidfd with no type; anon inodes, typeless there,
 * are checked too in case a kernel gives them one).
 */
static __always_inline __u8 vigil_stdio_kind(struct file *f)
{
	if (!f)
		return VIGIL_STDIO_NONE;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	umode_t mode = BPF_CORE_READ(inode, i_mode);
	switch (mode & VIGIL_S_IFMT) {
	case VIGIL_S_IFREG: {
		unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
		if (magic == VIGIL_ANON_INODE_FS_MAGIC || magic == VIGIL_PID_FS_MAGIC || magic == VIGIL_NSFS_MAGIC)
			return VIGIL_STDIO_OTHER;
		return VIGIL_STDIO_FILE;
	}
	case VIGIL_S_IFDIR:
		return VIGIL_STDIO_DIR;
	case VIGIL_S_IFIFO:
		return VIGIL_STDIO_PIPE;
	case VIGIL_S_IFCHR: {
		__u32 major = (__u32)BPF_CORE_READ(inode, i_rdev) >> VIGIL_MINORBITS;
		if ((major >= 136 && major <= 143) || major == 4 || major == 5)
			return VIGIL_STDIO_TTY;
		return VIGIL_STDIO_CHR;
	}
	case VIGIL_S_IFSOCK: {
		/* SOCKET_I(): the inode lives in a struct socket_alloc beside its socket. */
		struct socket_alloc *sa = (void *)inode - bpf_core_field_offset(struct socket_alloc, vfs_inode);
		struct sock *sk = BPF_CORE_READ(sa, socket.sk);
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (family == VIGIL_AF_INET)
			return VIGIL_STDIO_INET;
		if (family == VIGIL_AF_INET6)
			return VIGIL_STDIO_INET6;
		if (family == VIGIL_AF_UNIX)
			return VIGIL_STDIO_UNIX;
		return VIGIL_STDIO_SOCKET;
	}
	default:
		return VIGIL_STDIO_OTHER;
	}
}

/* fds 0, 1 and 2 of the task: one read of the three pointers (an fd table has room for
 * 64 at least), each bounded by max_fds all the same. */
static __always_inline void vigil_fill_stdio(struct task_struct *task, __u8 out[3])
{
	struct file *f[3] = {};
	struct fdtable *fdt = task->files->fdt;
	unsigned int max = fdt->max_fds;
	struct file **fds = fdt->fd;
	if (max >= 3) {
		bpf_probe_read_kernel(f, sizeof(f), fds);
	} else {
		for (unsigned int i = 0; i < 3; i++)
			if (i < max)
				bpf_probe_read_kernel(&f[i], sizeof(f[i]), &fds[i]);
	}
	out[0] = vigil_stdio_kind(f[0]);
	out[1] = vigil_stdio_kind(f[1]);
	out[2] = vigil_stdio_kind(f[2]);
}

#endif
