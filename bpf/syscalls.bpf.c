// SPDX-License-Identifier: GPL-2.0
/*
 * System calls of container tasks. sys_enter counts every call per container and
 * saves the arguments of the calls a rule asks for (or of every call of a streamed
 * container); sys_exit builds the record: user strings, the directory a relative
 * path is based on, the kernel's own path of an fd, a socket's addresses and raw
 * argument bytes (a sockaddr), then applies the watched path and port filters.
 */
#include "common.h"
#include "paths.h"

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_MAX_SYSCALL 512
#define VIGIL_AT_FDCWD -100

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_MAX_SYSCALL);
	__type(key, __u32);
	__type(value, struct vigil_syscall_rule);
} vigil_syscall_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_count_key);
	__type(value, __u64);
} vigil_syscall_counts SEC(".maps");

/* Containers (by key) whose every system call is streamed raw. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} vigil_stream SEC(".maps");

struct vigil_inflight {
	__u64 args[6];
	__u64 enter_ns;
	__u32 nr;
	__u32 raw;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vigil_inflight);
} vigil_inflight SEC(".maps");

/* Room for the arguments of a call sys_enter never saw (see vigil_sys_exit). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_inflight);
} vigil_inflight_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_path_key);
	__type(value, __u8);
} vigil_path_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_path_key);
	__type(value, __u8);
} vigil_path_suffixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} vigil_ports SEC(".maps");

static __always_inline int port_watched(__u16 port)
{
	return port && bpf_map_lookup_elem(&vigil_ports, &port) != NULL;
}

static __always_inline __u64 arg_of(struct pt_regs *regs, int i)
{
	switch (i) {
	case 0: return BPF_CORE_READ(regs, di);
	case 1: return BPF_CORE_READ(regs, si);
	case 2: return BPF_CORE_READ(regs, dx);
	case 3: return BPF_CORE_READ(regs, r10);
	case 4: return BPF_CORE_READ(regs, r8);
	default: return BPF_CORE_READ(regs, r9);
	}
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	if (id < 0 || id >= VIGIL_MAX_SYSCALL)
		return 0;
	__u32 nr = id;

	if (cfg->count_syscalls) {
		struct vigil_count_key ck = { .container_key = key, .nr = nr };
		__u64 *n = bpf_map_lookup_elem(&vigil_syscall_counts, &ck);
		if (n) {
			*n += 1;
		} else {
			__u64 one = 1;
			bpf_map_update_elem(&vigil_syscall_counts, &ck, &one, BPF_NOEXIST);
		}
	}

	struct vigil_syscall_rule *rule = bpf_map_lookup_elem(&vigil_syscall_rules, &nr);
	__u32 raw = bpf_map_lookup_elem(&vigil_stream, &key) != NULL;
	if (!raw && (!rule || !rule->emit))
		return 0;

	struct vigil_inflight in = { .nr = nr, .raw = raw, .enter_ns = bpf_ktime_get_ns() };
	for (int i = 0; i < 6; i++)
		in.args[i] = arg_of(regs, i);

	/* A connect's first state changes happen before it returns: start following the
	 * socket now, with this task as its owner. */
	if (rule && (rule->flags & VIGIL_RULE_TRACK_SOCK) && rule->fd_arg < 6) {
		struct sock *sk = vigil_file_sock(vigil_fd_file(task, (__s64)(int)in.args[rule->fd_arg]));
		/* Under the port filter, a socket of no watched port is not followed: its state
		 * changes would cross the filter its calls are held to. The remote port is the
		 * connect's sockaddr (family, then port in network order). */
		int follow = 1;
		if (sk && (rule->flags & VIGIL_RULE_PORT_FILTER) && cfg->port_filter) {
			__u16 remote = 0;
			if (rule->blob_arg < 6 && !(rule->flags & VIGIL_RULE_BLOB_LEN_PTR)) {
				__u16 sa[2] = {};
				bpf_probe_read_user(sa, sizeof(sa), (void *)in.args[rule->blob_arg]);
				remote = __builtin_bswap16(sa[1]);
			}
			follow = port_watched(BPF_CORE_READ(sk, __sk_common.skc_num)) || port_watched(remote);
		}
		if (follow && sk && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP) {
			struct vigil_header owner = {};
			vigil_fill_header(&owner, VIGIL_KIND_TCP_STATE, task, key);
			__u64 skey = (__u64)sk;
			bpf_map_update_elem(&vigil_tracked_socks, &skey, &owner, BPF_ANY);
		}
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&vigil_inflight, &tid, &in, BPF_ANY);
	return 0;
}

/* Copies the path of `p` into the record at *pos; returns its length. */
static __always_inline __u16 put_path(struct vigil_syscall *e, __u32 *pos, struct vigil_pathwork *work, struct path *p,
				      struct task_struct *task)
{
	__u32 at = *pos;
	if (at > VIGIL_DATA_MAX - VIGIL_PATH_MAX)
		return 0;
	int cut = 0;
	__u32 len = copy_path(work, p, task, &e->data[at & (2 * VIGIL_PATH_MAX - 1)], &cut);
	if (cut)
		e->sflags |= VIGIL_SC_PATH_CUT;
	*pos = at + len;
	return len;
}

static __always_inline __u16 put_user_str(struct vigil_syscall *e, __u32 *pos, __u64 uptr)
{
	__u32 at = *pos;
	if (at > VIGIL_DATA_MAX - VIGIL_STR_MAX)
		return 0;
	long n = bpf_probe_read_user_str(&e->data[at & (2 * VIGIL_PATH_MAX - 1)], VIGIL_STR_MAX, (void *)uptr);
	if (n <= 1)
		return 0;
	if (n == VIGIL_STR_MAX)
		e->sflags |= VIGIL_SC_STR_CUT; /* the string filled the room: it may go on */
	*pos = at + n - 1; /* the NUL is not kept */
	return n - 1;
}

#define VIGIL_SUBJECT_MASK (2 * VIGIL_PATHBUF - 1)

/* Copies len bytes of the record's data at `at` into the subject buffer at `to`. */
static __always_inline __u32 put_subject(struct vigil_syscall *e, struct vigil_pathwork *work, __u32 to, __u32 at, __u32 len)
{
	len &= 2 * VIGIL_PATH_MAX - 1;
	if (len > VIGIL_PATH_MAX || to > VIGIL_PATHBUF)
		return to;
	bpf_probe_read_kernel(&work->buf[to & (VIGIL_PATHBUF - 1)], len, &e->data[at & (2 * VIGIL_PATH_MAX - 1)]);
	return to + len;
}

struct subject_ctx {
	__u32 len;
	__u32 odd; /* set by scan_one: the name is not in canonical form */
};

/* Looks at one byte of the subject: does a '//', '/./' or '/../' start here? (a bpf_loop callback) */
static long scan_one(__u64 i, void *data)
{
	struct subject_ctx *s = data;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work || i + 1 >= s->len)
		return 1;
	if (work->buf[i & VIGIL_SUBJECT_MASK] != '/')
		return 0;
	char c1 = work->buf[(i + 1) & VIGIL_SUBJECT_MASK];
	char c2 = i + 2 < s->len ? work->buf[(i + 2) & VIGIL_SUBJECT_MASK] : '/';
	char c3 = i + 3 < s->len ? work->buf[(i + 3) & VIGIL_SUBJECT_MASK] : '/';
	if (c1 == '/' || (c1 == '.' && (c2 == '/' || (c2 == '.' && c3 == '/')))) {
		s->odd = 1;
		return 1;
	}
	return 0;
}

/* Copies one byte of the subject, from its end, into the suffix key (a bpf_loop callback). */
static long reverse_one(__u64 i, void *data)
{
	struct subject_ctx *s = data;
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work || i >= s->len)
		return 1;
	work->key.path[i & (VIGIL_STR_MAX - 1)] = work->buf[(s->len - 1 - i) & VIGIL_SUBJECT_MASK];
	return 0;
}

/*
 * Does the subject (work->buf[0, len)) start with a watched prefix or end with a watched
 * suffix? A name the kernel did not resolve ('..', '.', '//' in it) passes: the sets are
 * written for canonical paths, and such a name is how one would slip past them.
 */
static __always_inline int path_watched(struct vigil_pathwork *work, __u32 len, int canonical)
{
	if (len == 0)
		return 0;
	struct subject_ctx s = { .len = len };
	if (!canonical) {
		bpf_loop(2 * VIGIL_PATHBUF, scan_one, &s, 0);
		if (s.odd)
			return 1;
	}
	/* Prefixes are at most VIGIL_STR_MAX bytes: the subject's first bytes decide. A NUL
	 * after a subject that fits lets an entry ending in NUL match that exact path only. */
	__u32 plen = len > VIGIL_STR_MAX ? VIGIL_STR_MAX : len;
	barrier_var(plen);
	plen &= 2 * VIGIL_STR_MAX - 1;
	if (plen > VIGIL_STR_MAX)
		return 0;
	bpf_probe_read_kernel(work->key.path, plen, work->buf);
	if (plen < VIGIL_STR_MAX) {
		work->key.path[plen & (VIGIL_STR_MAX - 1)] = 0;
		work->key.prefixlen = (plen + 1) * 8;
	} else {
		work->key.prefixlen = plen * 8;
	}
	/* The longest watched prefix decides: value 1 watches, 0 excludes (/etc/ld.so.cache under /etc/). */
	__u8 *verdict = bpf_map_lookup_elem(&vigil_path_prefixes, &work->key);
	if (verdict)
		return *verdict;
	/* Suffixes: the subject's last bytes, reversed. */
	bpf_loop(VIGIL_STR_MAX, reverse_one, &s, 0);
	return bpf_map_lookup_elem(&vigil_path_suffixes, &work->key) != NULL;
}

/*
 * Does the record's subject pass the watched path sets? The subject is the kernel's path
 * of the fd when there is one; else the string, joined to the directory it is relative
 * to (a failed open). A global function: verified once on its own, which keeps the
 * verifier's work on vigil_sys_exit within bounds.
 */
__noinline int vigil_subject_watched(struct vigil_syscall *e, struct vigil_pathwork *work, int based_string)
{
	if (!e || !work)
		return 1;
	/* A name cut at its bound cannot be judged: it passes. */
	if (e->sflags & (VIGIL_SC_STR_CUT | VIGIL_SC_PATH_CUT))
		return 1;
	__u32 s0 = e->str_len[0], s1 = e->str_len[1], base = e->base_len;
	if (e->fd_path_len)
		return path_watched(work, put_subject(e, work, 0, s0 + s1 + base, e->fd_path_len), 1);
	__u32 len = 0;
	if (base) {
		len = put_subject(e, work, 0, s0 + s1, base);
		if (len > 0 && work->buf[(len - 1) & VIGIL_SUBJECT_MASK] != '/') {
			work->buf[len & VIGIL_SUBJECT_MASK] = '/';
			len++;
		}
	}
	if (based_string)
		len = put_subject(e, work, len, s0, s1);
	else
		len = put_subject(e, work, len, 0, s0);
	return path_watched(work, len, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	struct vigil_config *cfg = vigil_get_config();
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 key;
	if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct vigil_inflight *in = bpf_map_lookup_elem(&vigil_inflight, &tid);
	int not_entered = 0;
	if (!in) {
		/*
		 * seccomp refuses a call before sys_enter, but sys_exit still fires with the
		 * original number and untouched argument registers: report refused calls a
		 * rule asks for (an unshare blocked by the container's profile matters).
		 */
		long id = BPF_CORE_READ(regs, orig_ax);
		if (ret >= 0 || id < 0 || id >= VIGIL_MAX_SYSCALL)
			return 0;
		__u32 nr0 = id;
		struct vigil_syscall_rule *r0 = bpf_map_lookup_elem(&vigil_syscall_rules, &nr0);
		if (!r0 || !r0->emit)
			return 0;
		in = bpf_map_lookup_elem(&vigil_inflight_scratch, &zero);
		if (!in)
			return 0;
		in->nr = nr0;
		in->raw = 0;
		in->enter_ns = bpf_ktime_get_ns();
		for (int i = 0; i < 6; i++)
			in->args[i] = arg_of(regs, i);
		not_entered = 1;
	}
	__u32 nr = in->nr & (VIGIL_MAX_SYSCALL - 1);
	struct vigil_syscall_rule *rule = bpf_map_lookup_elem(&vigil_syscall_rules, &nr);
	struct vigil_syscall *e = vigil_scratch_buf();
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!e || !work || !rule) {
		bpf_map_delete_elem(&vigil_inflight, &tid);
		return 0;
	}
	int raw = in->raw;
	if (!raw && rule->emit == VIGIL_EMIT_ON_ERROR && ret >= 0) {
		bpf_map_delete_elem(&vigil_inflight, &tid);
		return 0;
	}

	e->ret = ret;
	for (int i = 0; i < 6; i++)
		e->args[i] = in->args[i];
	e->duration_ns = bpf_ktime_get_ns() - in->enter_ns;
	e->nr = nr;
	e->sflags = (raw ? VIGIL_SC_RAW : 0) | (not_entered ? VIGIL_SC_NOT_ENTERED : 0);
	e->str_len[0] = e->str_len[1] = 0;
	e->base_len = e->fd_path_len = e->blob_len = 0;
	__builtin_memset(&e->sock, 0, sizeof(e->sock));
	__u32 pos = 0;
	__u8 fl = rule->flags;
	struct sock *track_sk = NULL;

	if (!raw || rule->emit) {
		/* user strings */
		for (int s = 0; s < 2; s++) {
			__u8 a = rule->str_arg[s];
			if (a < 6)
				e->str_len[s] = put_user_str(e, &pos, in->args[a]);
		}
		/* the directory a relative string is based on */
		__u8 bs = rule->base_str & 1;
		__u8 ba = rule->base_arg;
		__u32 based_at = bs ? e->str_len[0] : 0;
		char first = 0;
		bpf_probe_read_kernel(&first, 1, &e->data[based_at & (2 * VIGIL_PATH_MAX - 1)]);
		if (e->str_len[bs] > 0 && first != '/' && ba != VIGIL_ARG_NONE) {
			struct path base;
			int have = 0;
			__s64 dirfd = ba < 6 ? (__s64)(int)in->args[ba] : VIGIL_AT_FDCWD;
			if (ba == VIGIL_ARG_CWD || dirfd == VIGIL_AT_FDCWD) {
				base = BPF_CORE_READ(task, fs, pwd);
				have = 1;
			} else {
				struct file *df = vigil_fd_file(task, dirfd);
				if (df) {
					base = BPF_CORE_READ(df, f_path);
					have = 1;
				}
			}
			if (have)
				e->base_len = put_path(e, &pos, work, &base, task);
		}
		/* the fd: its path from the kernel, or its socket */
		__u8 fa = rule->fd_arg;
		__s64 fd = fa == VIGIL_ARG_RET ? ret : (fa < 6 ? (__s64)(int)in->args[fa] : -1);
		struct file *f = fd >= 0 ? vigil_fd_file(task, fd) : NULL;
		struct sock *sk = vigil_file_sock(f);
		if (sk) {
			vigil_describe_sock(sk, &e->sock);
			e->sflags |= VIGIL_SC_SOCK;
			if ((fl & VIGIL_RULE_TRACK_SOCK) && e->sock.protocol == IPPROTO_TCP)
				track_sk = sk;
		} else if (f) {
			struct path fp = BPF_CORE_READ(f, f_path);
			e->fd_path_len = put_path(e, &pos, work, &fp, task);
			e->sflags |= VIGIL_SC_FD_PATH;
		}
		/* raw argument bytes */
		__u8 ra = rule->blob_arg;
		if (ra < 6) {
			__u32 blen = rule->blob_fixed_len;
			__u8 la = rule->blob_len_arg;
			if (la < 6) {
				if (fl & VIGIL_RULE_BLOB_LEN_PTR) {
					__u32 l = 0;
					bpf_probe_read_user(&l, sizeof(l), (void *)in->args[la]);
					blen = l;
				} else {
					blen = in->args[la];
				}
			}
			if (blen > VIGIL_BLOB_MAX)
				blen = VIGIL_BLOB_MAX;
			barrier_var(blen); /* keep the mask below: the verifier checks that register */
			blen &= VIGIL_BLOB_MAX * 2 - 1;
			__u32 at = pos;
			if (blen > 0 && at <= VIGIL_DATA_MAX - VIGIL_BLOB_MAX &&
			    bpf_probe_read_user(&e->data[at & (2 * VIGIL_PATH_MAX - 1)], blen, (void *)in->args[ra]) == 0) {
				e->blob_len = blen;
				pos = at + blen;
			}
		}

		/* filters */
		if (!raw && (fl & VIGIL_RULE_PATH_FILTER) && cfg->path_filter) {
			if (!vigil_subject_watched(e, work, bs))
				goto drop;
		}
		if (!raw && (fl & VIGIL_RULE_PORT_FILTER) && cfg->port_filter) {
			__u16 sa_port = 0;
			if (e->blob_len >= 4) {
				__u32 bat = pos - e->blob_len;
				__u8 hi = e->data[(bat + 2) & (2 * VIGIL_PATH_MAX - 1)];
				__u8 lo = e->data[(bat + 3) & (2 * VIGIL_PATH_MAX - 1)];
				sa_port = (hi << 8) | lo;
			}
			if (!port_watched(e->sock.local_port) && !port_watched(e->sock.remote_port) && !port_watched(sa_port))
				goto drop;
		}
	}

	/* The header last: a record the filters drop never pays for it. */
	vigil_fill_header(&e->hdr, VIGIL_KIND_SYSCALL, task, key);
	if (track_sk) {
		__u64 skey = (__u64)track_sk;
		bpf_map_update_elem(&vigil_tracked_socks, &skey, &e->hdr, BPF_ANY);
	}
	__u32 size = offsetof(struct vigil_syscall, data) + pos;
	e->hdr.size = size;
	vigil_submit(e, size, VIGIL_KIND_SYSCALL);
drop:
	bpf_map_delete_elem(&vigil_inflight, &tid);
	return 0;
}
