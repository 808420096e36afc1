/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The path of a file as the kernel holds it (dentry and mount), walked up to the root of
 * the task's mount namespace (the container's root file system), not to the task's own
 * root: a chroot inside the container does not move what a path is called. What a
 * successful open opened, what an exec executes. Shared by the objects that
 * report paths; vigil_pathwork is one map across them (the loader shares maps by name).
 */
#ifndef VIGIL_PATHS_H
#define VIGIL_PATHS_H

#include "common.h"

#define VIGIL_PATHBUF 1024  /* a path is assembled backwards ending here */
#define VIGIL_PATH_DEPTH 40 /* directory levels walked */

struct vigil_pathwork {
	char buf[2 * VIGIL_PATHBUF];
	struct vigil_path_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_pathwork);
} vigil_pathwork SEC(".maps");

static __always_inline struct vigil_pathwork *vigil_pathwork_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_pathwork, &zero);
}

struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 off;
	__u32 cut;
	__u32 done; /* the walk reached the root */
	__u32 pseudo; /* a pipe's or socket's nameless dentry: named "pipe:[INO]" after the walk */
	__u64 ino;
};

#define VIGIL_PIPEFS_MAGIC 0x50495045
#define VIGIL_SOCKFS_MAGIC 0x534F434B

/* One directory level of resolve_path (a bpf_loop callback: verified once, not per level). */
static long walk_one(__u64 index, void *data)
{
	struct walk_ctx *w = data;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work)
		return 1;
	/* Locals, not w->x: CO-RE relocations apply to kernel types only. */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	int last = 0;
	if (dentry == mnt_root) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt) {
			w->done = 1;
			return 1; /* the global root */
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mp;
		w->vfsmnt = (void *)mp + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	__u32 len = name.len & 0xff;
	if (dentry == parent) {
		/* A dentry of no directory that is not a mount's root. A pseudo file's name ends
		 * the walk (memfd:x); any other such dentry (a pipe's, nameless; a file system's
		 * root reached outside its mount, named "/", as open_by_handle_at gives) leaves
		 * the path incomplete: marked cut, so the path filter cannot be steered by it. */
		char first = 0;
		if (len > 0)
			bpf_probe_read_kernel(&first, 1, name.name);
		unsigned long magic = len == 0 ? BPF_CORE_READ(dentry, d_sb, s_magic) : 0;
		if (len == 0 && (magic == VIGIL_PIPEFS_MAGIC || magic == VIGIL_SOCKFS_MAGIC) && w->off == VIGIL_PATHBUF) {
			/* A pipe (a /proc/self/fd/N reopened) or socket: named as the kernel names it. */
			w->pseudo = magic == VIGIL_PIPEFS_MAGIC ? 1 : 2;
			w->ino = BPF_CORE_READ(dentry, d_inode, i_ino);
			w->done = 1;
			return 1;
		}
		if (len == 0 || first == '/') {
			w->cut = 1;
			w->done = 1;
			return 1;
		}
		last = 1;
	}
	__u32 off = w->off;
	if (off > VIGIL_PATHBUF || len + 1 > off - (VIGIL_PATHBUF - VIGIL_PATH_MAX)) {
		w->cut = 1;
		return 1;
	}
	off -= len;
	bpf_probe_read_kernel(&work->buf[off & (VIGIL_PATHBUF - 1)], len, name.name);
	off -= 1;
	work->buf[off & (VIGIL_PATHBUF - 1)] = '/';
	w->off = off;
	w->dentry = parent;
	if (last) {
		w->done = 1;
		return 1;
	}
	return 0;
}

/*
 * Writes the path of `p` as seen from the root of the task's mount namespace into work->buf, ending at
 * VIGIL_PATHBUF; returns its first byte's offset (VIGIL_PATHBUF - length). *cut is set
 * when the path was longer than VIGIL_PATH_MAX or deeper than VIGIL_PATH_DEPTH levels
 * (its leading levels are then missing).
 */
static __always_inline __u32 resolve_path(struct vigil_pathwork *work, struct path *p, struct task_struct *task, int *cut)
{
	struct walk_ctx w = {
		.dentry = BPF_CORE_READ(p, dentry),
		.vfsmnt = BPF_CORE_READ(p, mnt),
		.root_dentry = BPF_CORE_READ(task, nsproxy, mnt_ns, root, mnt.mnt_root),
		.root_mnt = (void *)BPF_CORE_READ(task, nsproxy, mnt_ns, root) + bpf_core_field_offset(struct mount, mnt),
		.off = VIGIL_PATHBUF,
	};
	w.mnt = (void *)w.vfsmnt - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(VIGIL_PATH_DEPTH, walk_one, &w, 0);
	if (!w.done)
		w.cut = 1; /* deeper than VIGIL_PATH_DEPTH levels: the leading ones are missing */
	*cut = w.cut;
	if (w.pseudo) {
		/* "pipe:[INO]", as /proc/PID/fd names it; written at the buffer's start, then moved to end there. */
		static const char pipe_fmt[] = "pipe:[%llu]";
		static const char sock_fmt[] = "socket:[%llu]";
		__u64 ino = w.ino;
		long n = w.pseudo == 1 ? bpf_snprintf((char *)work->key.path, 32, pipe_fmt, &ino, sizeof(ino))
				       : bpf_snprintf((char *)work->key.path, 32, sock_fmt, &ino, sizeof(ino));
		if (n > 1 && n <= 32) {
			__u32 len = (n - 1) & 31;
			bpf_probe_read_kernel(&work->buf[(VIGIL_PATHBUF - 32) & (VIGIL_PATHBUF - 1)], 32, work->key.path);
			/* right-align: the path must end at VIGIL_PATHBUF */
			bpf_probe_read_kernel(&work->buf[(VIGIL_PATHBUF - len) & (VIGIL_PATHBUF - 1)], len, work->key.path);
			return VIGIL_PATHBUF - len;
		}
		*cut = 1;
	}
	__u32 off = w.off;
	if (off >= VIGIL_PATHBUF) {
		off = VIGIL_PATHBUF - 1;
		work->buf[off & (VIGIL_PATHBUF - 1)] = '/';
	}
	return off;
}

/* Resolves `p` into dst (room for VIGIL_PATH_MAX bytes); returns its length, 0 when it could not be copied. */
static __always_inline __u32 copy_path(struct vigil_pathwork *work, struct path *p, struct task_struct *task, void *dst, int *cut)
{
	__u32 start = resolve_path(work, p, task, cut);
	__u32 len = (VIGIL_PATHBUF - start) & (VIGIL_PATHBUF - 1);
	if (len > VIGIL_PATH_MAX || bpf_probe_read_kernel(dst, len, &work->buf[start & (VIGIL_PATHBUF - 1)]) != 0)
		return 0;
	return len;
}

#endif
