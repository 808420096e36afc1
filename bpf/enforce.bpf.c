// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel kill: kill rules the kernel can decide (compiled by
 * src/policy/kernel-rules.ts into clauses, bpf/enforce.h) are evaluated here, and a
 * container task that matches one is sent SIGKILL with bpf_send_signal before user space
 * sees its record. At sched_process_exec the signal is delivered on the way back to user
 * space: not one instruction of the new program runs. At sys_enter the call itself still
 * runs (a tracepoint cannot make it fail), but nothing after it.
 *
 * The sensor loads this object only when some kill rule compiles to clauses, and loads it
 * first, so its programs run before every other program on the same tracepoints: the kill
 * is remembered in the task's state (vigil_task_state.kill_rule) before process.bpf.c
 * builds the exec record and before syscalls.bpf.c builds the call's record at sys_exit;
 * vigil_fill_header copies it into those headers (and the exit record's).
 */
#include "common.h"
#include "paths.h"
#include "kill.h"
#include "stdio_kind.h"
#include "enforce.h"

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_SIGKILL 9
#define VIGIL_TS_COMPAT_STATUS 0x0002 /* thread_info.status: a 32-bit call is running */
#define VIGIL_X32_BIT 0x40000000

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_kconf);
} vigil_kconf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_KCLAUSES);
	__type(key, __u32);
	__type(value, struct vigil_kclause);
} vigil_kclauses SEC(".maps");

/* Per system call number: the clauses (bit = clause index) whose syscall atom lists it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_KSYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} vigil_ksyscalls SEC(".maps");

/* Container key -> the kernel rules on for it (bit = rule). Written by the agent when it
 * resolves a container; a protected container's mask is 0. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} vigil_kmask SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct vigil_kstr_key);
	__type(value, __u8);
} vigil_kstrings SEC(".maps");

/* What an exec is, read once for every clause. A string longer than VIGIL_KSTR - 1 bytes is
 * kept by its head (for prefixes) and its tail (for suffixes): it equals no listed string. */
struct vigil_kfacts {
	struct vigil_kstr_key key;             /* built here for each lookup */
	__u8 str[VIGIL_KSTR_COUNT][VIGIL_KSTR] __attribute__((aligned(8)));  /* the head, NUL-padded */
	__u8 tail[VIGIL_KSTR_COUNT][VIGIL_KSTR] __attribute__((aligned(8))); /* the tail */
	__u8 rev[VIGIL_KSTR_COUNT][VIGIL_KSTR] __attribute__((aligned(8)));  /* the tail reversed */
	__u32 len[VIGIL_KSTR_COUNT];           /* the whole string's bytes */
	__u32 part[VIGIL_KSTR_COUNT];          /* bytes of head and tail: min(len, VIGIL_KSTR - 1) */
	__u8 valid[VIGIL_KSTR_COUNT];          /* 0: absent or unreadable: no positive match */
	__u8 stdio[3];
	__u8 setup;
	__u32 argc;                            /* 0, 1 or 2 (= two or more) as user space counts argv */
	/* At sys_exit: the call's result, its open flags, the socket it connected. */
	__s64 ret;
	__u32 oflags;
	__u8 oflags_valid;
	__u8 sock_valid;                       /* an AF_INET or AF_INET6 socket with a remote port */
	__u8 sock_family;                      /* 4 or 6, as user space names the address */
	__u8 sock_v6;                          /* the socket is AF_INET6 (its sockaddr's family) */
	__u16 remote_port;
	struct vigil_knet_key net;             /* the remote address, as looked up */
	struct vigil_kport_key port;
	__u8 big[VIGIL_ARGS_MAX];              /* an argument read whole, for its length (not cleared) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_kfacts);
} vigil_kfacts_buf SEC(".maps");

/* Per system call number: the clauses evaluated at its sys_exit (bit = clause index). Apart
 * from vigil_ksyscalls so that neither program looks at the other's calls. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_KSYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} vigil_kexit_syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vigil_kport_key);
	__type(value, __u8);
} vigil_kports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct vigil_knet_key);
	__type(value, __u8);
} vigil_knets SEC(".maps");

static __always_inline struct vigil_kconf *kconf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_kconf, &zero);
}

static __always_inline __u32 rules_on(struct vigil_kconf *kc, __u64 key)
{
	__u32 *m = bpf_map_lookup_elem(&vigil_kmask, &key);
	return m ? *m : kc->default_mask;
}

/* Is string `which` in set `set` by comparison `op`? */
static __noinline int str_in_set(struct vigil_kfacts *f, __u32 which, __u32 op, __u32 set)
{
	if (which >= VIGIL_KSTR_COUNT || !f->valid[which])
		return 0;
	__u32 len = f->len[which];
	__u32 part = f->part[which];
	if (part >= VIGIL_KSTR || (op == VIGIL_KOP_EQ && len != part))
		return 0;
	__u8 *src = op == VIGIL_KOP_SUFFIX ? f->rev[which] : f->str[which];
	__builtin_memcpy(f->key.s, src, VIGIL_KSTR);
	f->key.set = set;
	/* An exact set's entries end with the NUL: only the whole string matches. */
	f->key.prefixlen = 32 + 8 * (op == VIGIL_KOP_EQ ? part + 1 : part);
	return bpf_map_lookup_elem(&vigil_kstrings, &f->key) != NULL;
}

static __always_inline int atom_holds(struct vigil_kfacts *f, struct vigil_katom *a)
{
	int r;
	switch (a->type) {
	case VIGIL_KATOM_SETUP:
		r = f->setup;
		break;
	case VIGIL_KATOM_STR:
		/* A string the call does not have (no fd path, a path cut) is no fact: false either way. */
		if ((a->arg & 15) >= VIGIL_KSTR_COUNT || !f->valid[a->arg & 15])
			return 0;
		r = str_in_set(f, a->arg & 15, a->arg >> 4, a->value);
		break;
	case VIGIL_KATOM_ARGC_GT:
		r = f->argc > a->value;
		break;
	case VIGIL_KATOM_STDIO_ANY:
		r = ((a->value >> (f->stdio[0] & 31)) & 1) || ((a->value >> (f->stdio[1] & 31)) & 1) ||
		    ((a->value >> (f->stdio[2] & 31)) & 1);
		break;
	case VIGIL_KATOM_STDIO_AT:
		r = a->arg < 3 && ((a->value >> (f->stdio[a->arg < 3 ? a->arg : 0] & 31)) & 1);
		break;
	case VIGIL_KATOM_SYSCALL:
		r = 1; /* checked by the caller through vigil_ksyscalls */
		break;
	case VIGIL_KATOM_PORT:
		if (!f->sock_valid)
			return 0;
		f->port.set = a->value;
		f->port.port = f->remote_port;
		f->port._pad = 0;
		r = bpf_map_lookup_elem(&vigil_kports, &f->port) != NULL;
		break;
	case VIGIL_KATOM_NET:
		if (!f->sock_valid)
			return 0;
		f->net.set = a->value;
		f->net.prefixlen = 32 + 8 + (f->sock_family == 4 ? 32 : 128);
		r = bpf_map_lookup_elem(&vigil_knets, &f->net) != NULL;
		break;
	case VIGIL_KATOM_FAMILY:
		if (!f->sock_valid)
			return 0;
		r = (a->value >> (f->sock_v6 ? 1 : 0)) & 1;
		break;
	case VIGIL_KATOM_OFLAGS:
		if (!f->oflags_valid)
			return 0;
		r = (f->oflags & a->value) != 0 || ((a->arg >> (f->oflags & 3)) & 1);
		break;
	case VIGIL_KATOM_FAILED:
		r = f->ret < 0;
		break;
	default:
		return 0; /* an atom this object does not know never holds, negated or not */
	}
	return a->negate ? !r : r;
}

/* The first rule (index + 1) one of whose clauses at `where` holds, among `candidates`. */
static __always_inline __u32 first_match(struct vigil_kfacts *f, __u32 nclauses, __u32 where, __u32 mask, __u32 candidates)
{
	for (__u32 c = 0; c < VIGIL_KCLAUSES; c++) {
		if (c >= nclauses)
			break;
		if (!((candidates >> c) & 1))
			continue;
		__u32 idx = c;
		struct vigil_kclause *cl = bpf_map_lookup_elem(&vigil_kclauses, &idx);
		if (!cl || cl->where != where || cl->rule >= VIGIL_KRULES || !((mask >> cl->rule) & 1))
			continue;
		int all = 1;
		for (__u32 i = 0; i < VIGIL_KATOMS; i++) {
			if (i >= cl->natoms)
				break;
			if (!atom_holds(f, &cl->atoms[i])) {
				all = 0;
				break;
			}
		}
		if (all)
			return cl->rule + 1;
	}
	return 0;
}

/* A string of at most VIGIL_KSTR - 1 bytes already in f->str[which]: its tail is itself. */
static __always_inline void whole_string(struct vigil_kfacts *f, __u32 which, __u32 len)
{
	if (which >= VIGIL_KSTR_COUNT || len >= VIGIL_KSTR)
		return;
	__builtin_memcpy(f->tail[which], f->str[which], VIGIL_KSTR);
	f->len[which] = len;
	f->part[which] = len;
	f->valid[which] = 1;
}

/* The facts every clause may test, begun: cleared, the runtime-setup mark, and comm (the
 * kernel's, always whole: at most 15 bytes). Both programs start from this. */
static __always_inline struct vigil_kfacts *kfacts_begin(struct task_struct *task)
{
	__u32 zero = 0;
	struct vigil_kfacts *f = bpf_map_lookup_elem(&vigil_kfacts_buf, &zero);
	if (!f)
		return NULL;
	/* In parts: clang inlines a memset of a bounded size only. */
	/* The heads only: an exact lookup reads a head's NUL after its bytes; tails and their
	 * reversals are read no further than their bytes (the lookup's prefix length). */
	__builtin_memset(f->str, 0, sizeof(f->str));
	__builtin_memset(f->len, 0, offsetof(struct vigil_kfacts, big) - offsetof(struct vigil_kfacts, len));
	struct vigil_task_state *st = vigil_task_state(task);
	f->setup = st && (st->flags & VIGIL_TASK_SETUP) ? 1 : 0;
	bpf_get_current_comm(f->str[VIGIL_KSTR_COMM], VIGIL_COMM_LEN);
	__u32 n = 0;
	for (__u32 i = 0; i < VIGIL_COMM_LEN; i++) {
		if (f->str[VIGIL_KSTR_COMM][i] == 0)
			break;
		n++;
	}
	whole_string(f, VIGIL_KSTR_COMM, n);
	return f;
}

/* A check begun: enforcement on, the task a container's with some kernel rule on for it
 * (*kc and *mask set), and its facts begun; NULL when there is nothing to check. At an exec,
 * as process.bpf.c does before it builds the record (the same, whichever runs first): the
 * runtime's init exec'ing in the container is the container's code from here on. */
static __always_inline struct vigil_kfacts *enforce_begin(struct task_struct *task, struct vigil_kconf **kcp, __u32 *mask, int at_exec, __u64 *keyp)
{
	struct vigil_config *cfg = vigil_get_config();
	struct vigil_kconf *kc = kconf();
	__u64 key;
	if (!cfg || !cfg->enabled || !kc || !kc->enabled || !vigil_watched(task, cfg, &key))
		return NULL;
	*keyp = key;
	*mask = rules_on(kc, key);
	if (!*mask)
		return NULL;
	*kcp = kc;
	if (at_exec)
		vigil_exec_in_container(task, cfg);
	return kfacts_begin(task);
}

/*
 * Reads argv[i] at `at` (the args end at `end`, already capped at VIGIL_ARGS_MAX bytes from
 * argv[0], as the exec record carries them): its length, head and tail. Returns its bytes
 * with the NUL (0 when unreadable); valid only when its NUL is within `end`.
 */
static __always_inline long read_arg(struct vigil_kfacts *f, __u32 which, unsigned long at, unsigned long end)
{
	if (which >= VIGIL_KSTR_COUNT || at >= end)
		return 0;
	__u32 room = end - at;
	if (room > VIGIL_ARGS_MAX)
		room = VIGIL_ARGS_MAX;
	/* The length first: bpf_probe_read_user_str into the head stops at the NUL or the room. */
	__u32 size = room;
	barrier_var(size); /* the mask is for the verifier, which loses the bound through a copy */
	size &= 2 * VIGIL_ARGS_MAX - 1;
	if (size == 0 || size > VIGIL_ARGS_MAX)
		return 0;
	long n = bpf_probe_read_user_str(f->big, size, (void *)at);
	if (n <= 0)
		return 0;
	__u32 len = n - 1;
	/* n == room: the NUL the helper wrote may stand for a byte of a longer string (the args cut
	 * at VIGIL_ARGS_MAX): undecided, no positive match. */
	if ((__u32)n >= room && at + n > end)
		return n;
	if ((__u32)n >= room && room == VIGIL_ARGS_MAX)
		return n;
	__u32 part = len < VIGIL_KSTR - 1 ? len : VIGIL_KSTR - 1;
	barrier_var(part);
	part &= VIGIL_KSTR - 1;
	if (part > 0) {
		bpf_probe_read_user(f->str[which], part, (void *)at);
		bpf_probe_read_user(f->tail[which], part, (void *)(at + len - part));
	}
	f->len[which] = len;
	f->part[which] = part;
	f->valid[which] = 1;
	return n;
}

/* The path of p as user space names it (paths.h, as the records carry it) into string
 * `which`: its length, head and tail; left invalid when the walk cut it. */
static __always_inline void path_fact(struct vigil_kfacts *f, __u32 which, struct path *p, struct task_struct *task)
{
	struct vigil_pathwork *work = vigil_pathwork_buf();
	if (!work || which >= VIGIL_KSTR_COUNT)
		return;
	int cut = 0;
	__u32 start = resolve_path(work, p, task, &cut);
	if (cut || start >= VIGIL_PATHBUF)
		return;
	__u32 len = VIGIL_PATHBUF - start;
	__u32 part = len < VIGIL_KSTR - 1 ? len : VIGIL_KSTR - 1;
	barrier_var(part);
	part &= VIGIL_KSTR - 1;
	if (part == 0)
		return;
	bpf_probe_read_kernel(f->str[which], part, &work->buf[start & (VIGIL_PATHBUF - 1)]);
	bpf_probe_read_kernel(f->tail[which], part, &work->buf[(VIGIL_PATHBUF - part) & (VIGIL_PATHBUF - 1)]);
	f->len[which] = len;
	f->part[which] = part;
	f->valid[which] = 1;
}

static __always_inline void reverse_all(struct vigil_kfacts *f)
{
	for (__u32 w = 0; w < VIGIL_KSTR_COUNT; w++) {
		__u32 part = f->part[w];
		if (!f->valid[w] || part >= VIGIL_KSTR)
			continue;
		for (__u32 i = 0; i < VIGIL_KSTR - 1; i++) {
			if (i >= part)
				break;
			f->rev[w][i] = f->tail[w][(part - 1 - i) & (VIGIL_KSTR - 1)];
		}
	}
}

/* One fd of a holder candidate (a bpf_loop callback). */
struct holder_scan {
	__u64 file;
	struct file **fds;
	__u32 max;
	__u32 found;
};

static long holder_fd(__u64 i, void *data)
{
	struct holder_scan *h = data;
	if (i >= h->max)
		return 1;
	__u64 f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &h->fds[i]);
	if (f && f == h->file) {
		h->found = 1;
		return 1;
	}
	return 0;
}

/*
 * Every other process of the same container whose file table holds `file` (the file the killed
 * call opened, or the socket it connected) is killed too: a socket made before a fork is the
 * parent's as much as the child's, and the parent would write on the connection the killed
 * child opened; a file descriptor taken with pidfd_getfd or received over a unix socket
 * before the kill is another holder. Processes sharing the caller's file table are
 * vigil_kill_sharers'. Only at a kill: every process's table is read, up to 2^20 fds each.
 * A global function, verified once on its own.
 */
__noinline int vigil_kill_holders(__u64 file, __u64 key)
{
	if (!file || !bpf_send_signal_task || !bpf_iter_task_new || !bpf_task_acquire)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *own = task->files;
	struct bpf_iter_task it;
	struct task_struct *p;
	bpf_iter_task_new(&it, NULL, BPF_TASK_ITER_ALL_PROCS);
	while ((p = bpf_iter_task_next(&it))) {
		if (p->tgid == task->tgid)
			continue;
		struct files_struct *fs = p->files;
		if (!fs || fs == own)
			continue;
		struct vigil_task_state *st = vigil_task_state(p);
		if (!st || st->key != key)
			continue;
		struct fdtable *fdt = BPF_CORE_READ(fs, fdt);
		struct holder_scan h = { .file = file, .fds = BPF_CORE_READ(fdt, fd), .max = BPF_CORE_READ(fdt, max_fds) };
		if (h.max > (1u << 20))
			h.max = 1u << 20;
		bpf_loop(h.max, holder_fd, &h, 0);
		if (!h.found)
			continue;
		struct task_struct *ref = bpf_task_acquire(p);
		if (ref) {
			bpf_send_signal_task(ref, VIGIL_SIGKILL, PIDTYPE_TGID, 0);
			bpf_task_release(ref);
		}
	}
	bpf_iter_task_destroy(&it);
	return 0;
}

static __always_inline void kill(struct task_struct *task, __u32 rule)
{
	/* The mark first: every record built after this one carries it (vigil_fill_header). */
	struct vigil_task_state *st = vigil_task_state(task);
	if (st)
		st->kill_rule = rule;
	/* And whatever shares its memory or file table: a CLONE_FILES sibling would go on
	 * reading the file or writing to the socket through the same descriptor. */
	if (bpf_send_signal(VIGIL_SIGKILL) == 0)
		vigil_kill_sharers();
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_enforce_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct vigil_kconf *kc;
	__u32 mask;
	__u64 key;
	struct vigil_kfacts *f = enforce_begin(task, &kc, &mask, 1, &key);
	if (!f)
		return 0;


	/* The executable's own name: the last component of the path process.bpf.c walks. */
	{
		struct dentry *d = BPF_CORE_READ(bprm, file, f_path.dentry);
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		long n = name ? bpf_probe_read_kernel_str(f->str[VIGIL_KSTR_EXE_BASE], VIGIL_KSTR, name) : 0;
		/* A longer name is left undecided (n == VIGIL_KSTR may be a cut). */
		if (n > 0 && n < VIGIL_KSTR)
			whole_string(f, VIGIL_KSTR_EXE_BASE, n - 1);
	}
	/* Its whole path (process.exe), when a clause tests it: a walk up the directories. */
	if (kc->needs & VIGIL_KNEED_EXE_PATH) {
		struct path fp = BPF_CORE_READ(bprm, file, f_path);
		path_fact(f, VIGIL_KSTR_EXE, &fp, task);
		/* A walk cut (deeper than VIGIL_PATH_DEPTH levels, longer than VIGIL_PATH_MAX): user
		 * space then names process.exe by the name execve was given, the record's filename
		 * (its first VIGIL_FILENAME_MAX - 1 bytes, src/agent/processes.ts); so does this, or a
		 * program 41 directories below /tmp would pass the kernel's startsWith("/tmp/") and be
		 * killed by user space only after it ran. */
		if (!f->valid[VIGIL_KSTR_EXE]) {
			long n = bpf_probe_read_kernel_str(f->big, VIGIL_FILENAME_MAX, bprm->filename);
			if (n > 1) {
				__u32 len = (n - 1) & (VIGIL_FILENAME_MAX - 1);
				__u32 part = len < VIGIL_KSTR - 1 ? len : VIGIL_KSTR - 1;
				barrier_var(part);
				part &= VIGIL_KSTR - 1;
				if (part > 0) {
					bpf_probe_read_kernel(f->str[VIGIL_KSTR_EXE], part, f->big);
					bpf_probe_read_kernel(f->tail[VIGIL_KSTR_EXE], part, &f->big[(len - part) & (VIGIL_FILENAME_MAX - 1)]);
					f->len[VIGIL_KSTR_EXE] = len;
					f->part[VIGIL_KSTR_EXE] = part;
					f->valid[VIGIL_KSTR_EXE] = 1;
				}
			}
		}
	}

	/* argv[0] and argv[1] from the new image's stack, split as user space splits the record's
	 * args (NUL-separated, within arg_end and the first VIGIL_ARGS_MAX bytes). */
	{
		struct mm_struct *mm = BPF_CORE_READ(task, mm);
		unsigned long start = BPF_CORE_READ(mm, arg_start);
		unsigned long end = BPF_CORE_READ(mm, arg_end);
		if (end > start + VIGIL_ARGS_MAX)
			end = start + VIGIL_ARGS_MAX;
		long n0 = read_arg(f, VIGIL_KSTR_ARG0, start, end);
		if (end > start)
			f->argc = 1;
		if (n0 > 0 && f->valid[VIGIL_KSTR_ARG0] && start + n0 < end) {
			f->argc = 2;
			read_arg(f, VIGIL_KSTR_ARG1, start + n0, end);
		}
	}
	reverse_all(f);
	vigil_fill_stdio(task, f->stdio);

	__u32 rule = first_match(f, kc->nclauses, VIGIL_KWHERE_EXEC, mask, 0xffffffffu);
	if (rule)
		kill(task, rule);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_enforce_enter, struct pt_regs *regs, long id)
{
	/* Cheapest first: most calls are of numbers no clause lists. */
	if (id < 0 || id >= VIGIL_KSYSCALLS)
		return 0;
	__u32 nr = id;
	__u32 *clauses = bpf_map_lookup_elem(&vigil_ksyscalls, &nr);
	if (!clauses || !*clauses)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* A 32-bit call's number is of another table: left to user space, which names it. */
	if (BPF_CORE_READ(task, thread_info.status) & VIGIL_TS_COMPAT_STATUS)
		return 0;
	struct vigil_kconf *kc;
	__u32 mask;
	__u64 key;
	struct vigil_kfacts *f = enforce_begin(task, &kc, &mask, 0, &key);
	if (!f)
		return 0;
	reverse_all(f);
	__u32 rule = first_match(f, kc->nclauses, VIGIL_KWHERE_ENTER, mask, *clauses);
	if (rule)
		kill(task, rule);
	return 0;
}

/* x86-64 numbers of the calls whose facts the exit program reads. */
#define VIGIL_NR_OPEN 2
#define VIGIL_NR_CONNECT 42
#define VIGIL_NR_CREAT 85
#define VIGIL_NR_OPENAT 257
#define VIGIL_NR_OPENAT2 437
#define VIGIL_O_ACCMODE 03
#define VIGIL_O_PATH 010000000

/* The remote end of a connected socket, as the kernel holds it (not the sockaddr in user
 * memory, which a racing thread can change after the call read it). */
static __always_inline void sock_fact(struct vigil_kfacts *f, struct sock *sk)
{
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (port == 0)
		return;
	__builtin_memset(&f->net, 0, sizeof(f->net));
	if (family == VIGIL_AF_INET) {
		bpf_core_read(f->net.addr, 4, &sk->__sk_common.skc_daddr);
		f->sock_family = 4;
		f->sock_v6 = 0;
	} else if (family == VIGIL_AF_INET6) {
		bpf_core_read(f->net.addr, 16, &sk->__sk_common.skc_v6_daddr);
		f->sock_v6 = 1;
		f->sock_family = 6;
		/* ::ffff:a.b.c.d is compared as a.b.c.d (user space's inNetworks does so) */
		int mapped = f->net.addr[10] == 0xff && f->net.addr[11] == 0xff;
		for (int i = 0; i < 10; i++)
			if (f->net.addr[i])
				mapped = 0;
		if (mapped) {
			__builtin_memmove(f->net.addr, &f->net.addr[12], 4);
			__builtin_memset(&f->net.addr[4], 0, 12);
			f->sock_family = 4;
		}
	} else {
		return;
	}
	f->net.family = f->sock_family;
	f->remote_port = port;
	f->sock_valid = 1;
}

/*
 * Clauses about what a call opened or connected to: evaluated when it returns, on the kernel's
 * own objects (the fd's file and its path, the socket's peer), so no name or address swapped
 * in user memory by another thread changes the verdict. The call has run (an open opened, a
 * connect connected); the signal is delivered on the way back, before the process's next
 * instruction: it cannot read the file or write to the socket. This program runs before
 * syscalls.bpf.c's sys_exit (loaded first), whose record then carries the kill and is kept
 * whatever its path or port filters say.
 */
/* The x86-64 number of a 32-bit call the exit program reads facts of (user space names an
 * i386 call by the i386 table: its open is "open", as the 64-bit one), or 0. */
static __always_inline __u32 compat_to_native(long id)
{
	switch (id) {
	case 5: return VIGIL_NR_OPEN;
	case 8: return VIGIL_NR_CREAT;
	case 295: return VIGIL_NR_OPENAT;
	case 437: return VIGIL_NR_OPENAT2;
	case 362: return VIGIL_NR_CONNECT; /* socketcall's connect is in user memory: left to user space */
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_enforce_exit, struct pt_regs *regs, long ret)
{
	long id = BPF_CORE_READ(regs, orig_ax);
	if (id < 0 || id >= VIGIL_KSYSCALLS)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* A 32-bit call (int 0x80 from a 64-bit process too): its number is of the i386 table, its
	 * arguments in ebx, ecx, edx. */
	int compat = (BPF_CORE_READ(task, thread_info.status) & VIGIL_TS_COMPAT_STATUS) != 0;
	__u32 nr = compat ? compat_to_native(id) : (__u32)id;
	if (!nr)
		return 0;
	__u32 *clauses = bpf_map_lookup_elem(&vigil_kexit_syscalls, &nr);
	if (!clauses || !*clauses)
		return 0;
	/* A connect killed already at the socket's active open (below): dying, its sharers and
	 * holders signalled; not a second time. Opens skip the lookup: between the open's
	 * fd_install and the kill every instruction is time a sibling can use. */
	if (nr == VIGIL_NR_CONNECT) {
		struct vigil_task_state *dying = vigil_task_state(task);
		if (dying && dying->kill_rule)
			return 0;
	}
	struct vigil_kconf *kc;
	__u32 mask;
	__u64 key;
	struct vigil_kfacts *f = enforce_begin(task, &kc, &mask, 0, &key);
	if (!f)
		return 0;
	__u64 a0 = compat ? (__u32)BPF_CORE_READ(regs, bx) : BPF_CORE_READ(regs, di);
	__u64 a1 = compat ? (__u32)BPF_CORE_READ(regs, cx) : BPF_CORE_READ(regs, si);
	__u64 a2 = BPF_CORE_READ(regs, dx);
	f->ret = ret;
	struct file *held = NULL; /* what the call opened or connected: its other holders die with it */
	if (nr == VIGIL_NR_OPEN || nr == VIGIL_NR_OPENAT || nr == VIGIL_NR_OPENAT2 || nr == VIGIL_NR_CREAT) {
		/* The flags as the record shows them: the call's register (a thread's own: no race),
		 * openat2's from its struct open_how. */
		if (nr == VIGIL_NR_OPEN) {
			f->oflags = (__u32)a1;
			f->oflags_valid = 1;
		} else if (nr == VIGIL_NR_OPENAT) {
			f->oflags = (__u32)a2;
			f->oflags_valid = 1;
		} else if (nr == VIGIL_NR_OPENAT2) {
			__u64 how = 0;
			if (bpf_probe_read_user(&how, sizeof(how), (void *)a2) == 0) {
				f->oflags = (__u32)how;
				f->oflags_valid = 1;
			}
		}
		struct file *file = ret >= 0 ? vigil_fd_file(task, ret) : NULL;
		held = file;
		if (file) {
			struct path fp = BPF_CORE_READ(file, f_path);
			path_fact(f, VIGIL_KSTR_PATH, &fp, task);
			/* openat2's flags are in user memory, which another thread may have changed since
			 * the call read it: the access mode and O_PATH the file was opened with are the
			 * file's own (the kernel drops O_CREAT, O_TRUNC and the like from f_flags, so
			 * those stay as read). */
			if (nr == VIGIL_NR_OPENAT2 && f->oflags_valid)
				f->oflags = (f->oflags & ~(__u32)(VIGIL_O_ACCMODE | VIGIL_O_PATH)) |
					    (BPF_CORE_READ(file, f_flags) & (VIGIL_O_ACCMODE | VIGIL_O_PATH));
		}
	} else if (nr == VIGIL_NR_CONNECT) {
		held = vigil_fd_file(task, (__s64)(int)a0);
		sock_fact(f, vigil_file_sock(held));
	}
	reverse_all(f);
	__u32 rule = first_match(f, kc->nclauses, VIGIL_KWHERE_EXIT, mask, *clauses);
	if (rule) {
		kill(task, rule);
		vigil_kill_holders((__u64)held, key);
	}
	return 0;
}

#define VIGIL_TCP_SYN_SENT 2
#define VIGIL_TCP_CLOSE 7
#define VIGIL_PF_IO_WORKER 0x00000010   /* an io_uring worker or SQPOLL thread (include/linux/sched.h) */
#define VIGIL_NR_IO_URING_ENTER 426
#define VIGIL_NR32_SOCKETCALL 102
#define VIGIL_NR32_CONNECT 362

/*
 * The connect clauses again, at the socket's active open (CLOSE -> SYN_SENT): inside the
 * connect, in the connecting task, after the kernel has copied the address into the socket and
 * before the SYN is sent. sys_exit comes after the handshake (a blocking connect returns once
 * it is done), and in between another thread blocked in send() on the same socket is woken by
 * the handshake and queues its bytes: they leave whatever kills the process later. A kill here
 * is pending before the peer can answer: such a writer's wait for the connection ends on the
 * signal with nothing queued (unless it is waiting for the socket's lock while the connecting
 * task holds it, and the SYN-ACK makes the socket ESTABLISHED before it gets the lock:
 * test/respond/kernel-kill-attack.test.ts). And it covers the opens no connect(2) of the 64-bit table names:
 * IORING_OP_CONNECT (in io_uring_enter or an io_uring worker) and i386 socketcall(SYS_CONNECT),
 * whose sockaddr is in user memory at sys_exit. A TCP Fast Open sendto is an active open too,
 * but user space does not call it a connect: left alone (the kernel never kills what user space
 * would not).
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_enforce_tcp_open, const struct sock *sk, const int oldstate, const int newstate)
{
	if (oldstate != VIGIL_TCP_CLOSE || newstate != VIGIL_TCP_SYN_SENT)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	int worker = (task->flags & VIGIL_PF_IO_WORKER) != 0;
	/* Which call opens it: connect (also i386 connect and socketcall(SYS_CONNECT)), or an
	 * io_uring connect, whose clauses kernel-rules.ts files under io_uring_enter (the number
	 * is 426 in both tables). A clause lists io_uring:connect only when its rule does. */
	__u32 nr = VIGIL_NR_CONNECT;
	if (worker) {
		nr = VIGIL_NR_IO_URING_ENTER;
	} else {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		long id = regs ? BPF_CORE_READ(regs, orig_ax) : -1;
		int compat = (BPF_CORE_READ(task, thread_info.status) & VIGIL_TS_COMPAT_STATUS) != 0;
		if (id == VIGIL_NR_IO_URING_ENTER)
			nr = VIGIL_NR_IO_URING_ENTER;
		else if (compat ? (id != VIGIL_NR32_SOCKETCALL && id != VIGIL_NR32_CONNECT) : id != VIGIL_NR_CONNECT)
			return 0;
	}
	__u32 *clauses = bpf_map_lookup_elem(&vigil_kexit_syscalls, &nr);
	if (!clauses || !*clauses)
		return 0;
	struct vigil_config *cfg = vigil_get_config();
	struct vigil_kconf *kc = kconf();
	if (!cfg || !cfg->enabled || !kc || !kc->enabled)
		return 0;
	if (worker && !vigil_task_state(task)) {
		/* An io_uring worker is made with no sched_process_fork: it takes its leader's state
		 * (as io_uring.bpf.c does), or vigil_watched would take it for the runtime's. */
		struct task_struct *leader = task->group_leader;
		struct vigil_task_state *ls = leader ? vigil_task_state(leader) : NULL;
		if (ls)
			vigil_remember_child(leader, task, ls->key);
	}
	__u64 key;
	if (!vigil_watched(task, cfg, &key))
		return 0;
	__u32 mask = rules_on(kc, key);
	if (!mask)
		return 0;
	struct vigil_kfacts *f = kfacts_begin(task);
	if (!f)
		return 0;
	f->ret = 0; /* the call has not returned: a clause about a failed call does not hold */
	sock_fact(f, (struct sock *)sk);
	reverse_all(f);
	__u32 rule = first_match(f, kc->nclauses, VIGIL_KWHERE_EXIT, mask, *clauses);
	if (rule) {
		kill(task, rule);
		vigil_kill_holders((__u64)BPF_CORE_READ(sk, sk_socket, file), key);
	}
	return 0;
}
