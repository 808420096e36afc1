/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Maps and helpers every vigil BPF object shares. Each object gets its own copy of
 * these definitions; the sensor loads the first object and makes the later ones
 * reuse the same maps (bpf_map__reuse_fd), so there is one ring buffer, one config
 * and one set of counters whatever the number of objects.
 */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.h"

#define VIGIL_SCRATCH_SIZE 8192

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* user space may resize before load */
} vigil_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_config);
} vigil_config SEC(".maps");

/* Records that did not fit in the ring buffer, per CPU and kind (host-wide). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_lost SEC(".maps");

/* Records dropped because their container had spent its budget, per CPU and kind (host-wide). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_KIND_MAX);
	__type(key, __u32);
	__type(value, __u64);
} vigil_shed SEC(".maps");

/* Records not queued, by container key, kind and reason, per CPU: whose loss it was. LRU:
 * a key evicted before user space read it leaves its count in the host-wide maps above
 * only, which user space then reports as loss of no known container. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_lost_key);
	__type(value, __u64);
} vigil_lost_by_container SEC(".maps");

/* Budget and wakeup settings (struct vigil_budget_config); all zero: no budget, the
 * kernel's own wakeup on every record that finds the reader idle. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_budget_config);
} vigil_budget_config SEC(".maps");

/* Each container's token bucket, by container key. LRU: an evicted bucket starts full again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vigil_bucket);
} vigil_budgets SEC(".maps");

/* Cgroups (by container key) known not to be containers: a host service with a
 * private mount namespace, say. Filled by user space after it has looked once. LRU:
 * services come and go with fresh cgroups; one evicted is looked up again, not lost. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} vigil_ignored_cgroups SEC(".maps");

/* Room to build one variable-length record before copying it to the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[VIGIL_SCRATCH_SIZE]);
} vigil_scratch SEC(".maps");

/* Sockets a container task accepted, with that task's header, until the socket's next
 * TCP state change (often in softirq context) moves it into the socket's own storage
 * (network.bpf.c). Only a newer owner than the one the socket already has: an accepted
 * socket inherits its listener's owner at creation (BPF_F_CLONE storage), so an entry
 * evicted by a flood costs the accepting task's name, never the container's. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vigil_header);
} vigil_tracked_socks SEC(".maps");

/* The socket a task's tracked call works on, with the task as its owner: set by connect
 * and listen at sys_enter (their first state change, SYN_SENT or LISTEN, happens inside
 * the call, in the task's own context) and by accept at sys_exit; taken by that state
 * change into the socket's storage. Task storage: no other task's sockets can evict it. */
struct vigil_sock_pending {
	__u64 sk;                  /* the struct sock, 0 when none is pending */
	struct vigil_header owner;
};
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_sock_pending);
} vigil_sock_pending SEC(".maps");


/* Tasks known to be containers' (task-local storage: it lives and dies with the task, so
 * a reused pid starts clean, and a task without it costs one pointer check). A task stays
 * watched, and attributed to its container, wherever it goes next: into the host's mount
 * namespace (setns), into a host cgroup (a write to cgroup.procs); so do the tasks it
 * forks or clones there. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_task_state);
} vigil_container_tasks SEC(".maps");

static __always_inline struct vigil_config *vigil_get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_config, &zero);
}

static __always_inline __u64 vigil_container_key(struct task_struct *task, __u32 mode)
{
	if (mode == VIGIL_CGROUP_V1_MEMORY) {
		/* Direct BTF loads, no helper calls: host tasks take this path on every syscall. */
		int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		struct css_set *cset = task->cgroups;
		struct cgroup_subsys_state *css = cset ? cset->subsys[id & 15] : NULL;
		if (css) {
			__u64 kid = css->cgroup->kn->id;
			if (kid)
				return kid;
		}
	}
	return bpf_get_current_cgroup_id();
}

static __always_inline struct vigil_task_state *vigil_task_state(struct task_struct *task)
{
	/* A task with no BPF task storage at all (nearly every host task) skips the helper call. */
	if (bpf_core_field_exists(task->bpf_storage) && !task->bpf_storage)
		return NULL;
	return bpf_task_storage_get(&vigil_container_tasks, task, 0, 0);
}

/*
 * The first check of every program: is the task a container's, and which container's?
 * A task remembered in vigil_container_tasks is, under the key it was remembered with
 * (the cgroup it was first seen in, or for the runtime's init the one it exec'd in),
 * wherever it is now: in the host's mount namespace (setns), in a host cgroup (a write
 * to cgroup.procs), or both. Otherwise a task outside the host's mount namespace is,
 * unless user space marked its cgroup as a host one (a service with a private mount
 * namespace); it is then remembered. A task in the host's mount namespace that was never
 * remembered is the host's. Host tasks cost a few loads and one pointer check.
 */
static __always_inline int vigil_watched(struct task_struct *task, struct vigil_config *cfg, __u64 *key)
{
	struct nsproxy *nsp = task->nsproxy;
	if (!nsp)
		return 0;
	__u32 mnt = nsp->mnt_ns->ns.inum;
	if (mnt == 0)
		return 0;
	struct vigil_task_state *known = vigil_task_state(task);
	if (known) {
		*key = known->key;
		/* Outside the host's mount namespace a remembered key follows the task's cgroup
		 * again in two cases: the runtime's init (VIGIL_TASK_SETUP), moved into the
		 * container's cgroup after it made its namespaces, until it execs there; and a
		 * task remembered under a cgroup user space has since marked as the host's (first
		 * seen in a host service with a private mount namespace: a runtime so confined
		 * starts its containers from there). A container task's own key is never marked,
		 * so one that moves into a host cgroup keeps it. */
		if (mnt != cfg->host_mnt_ns &&
		    ((known->flags & VIGIL_TASK_SETUP) || bpf_map_lookup_elem(&vigil_ignored_cgroups, key))) {
			*key = vigil_container_key(task, cfg->cgroup_mode);
			known->key = *key;
		}
	} else {
		if (mnt == cfg->host_mnt_ns)
			return 0;
		*key = vigil_container_key(task, cfg->cgroup_mode);
	}
	/* A marked cgroup's tasks are dropped under whichever key they hold now: a host
	 * service's task, remembered before the mark or not, stays the host's. */
	if (bpf_map_lookup_elem(&vigil_ignored_cgroups, key))
		return 0;
	if (!known) {
		/* First seen here, not born of a watched task: it started before the agent
		 * (left unmarked: we cannot know), or it came in from the host since (the
		 * runtime setting the container up). Every task a container makes itself is
		 * remembered at fork, so this cannot be one of those. */
		struct vigil_task_state fresh = { .key = *key };
		if (task->start_time >= cfg->started_ns)
			fresh.flags = VIGIL_TASK_SETUP;
		bpf_task_storage_get(&vigil_container_tasks, task, &fresh, BPF_LOCAL_STORAGE_GET_F_CREATE);
	}
	return 1;
}

/* A watched task's child (process or thread) is a container task too, wherever it was
 * made, and inherits what is known of its parent. */
static __always_inline void vigil_remember_child(struct task_struct *parent, struct task_struct *child, __u64 key)
{
	struct vigil_task_state state = { .key = key };
	struct vigil_task_state *p = vigil_task_state(parent);
	if (p)
		state.flags = p->flags & ~VIGIL_TASK_COMPAT_SEEN; /* the child's own first compat call is reported too */
	bpf_task_storage_get(&vigil_container_tasks, child, &state, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* An exec inside the container's mount namespace: from here on it runs the container's code. */
static __always_inline void vigil_exec_in_container(struct task_struct *task, struct vigil_config *cfg)
{
	struct vigil_task_state *s = vigil_task_state(task);
	if (s && (s->flags & VIGIL_TASK_SETUP) && task->nsproxy->mnt_ns->ns.inum != cfg->host_mnt_ns) {
		s->flags &= ~VIGIL_TASK_SETUP;
		s->key = vigil_container_key(task, cfg->cgroup_mode); /* fixed from here on */
	}
}

/* The number of pid p in the namespace at `level` (numbers[] is a flexible array: a
 * variable index is out of reach of a direct load, so this is one helper read). */
static __always_inline __u32 vigil_pid_in_own_ns(struct pid *p, unsigned int level)
{
	int nr = 0;
	bpf_core_read(&nr, sizeof(nr), &p->numbers[level & 31].nr);
	return nr;
}

/*
 * Every record's header. task is a BTF pointer (a tp_btf argument or
 * bpf_get_current_task_btf) and is the current task for every caller, so the fields are
 * direct loads: the verifier turns each into one guarded instruction, where a helper read
 * is a call (and a return through this kernel's return thunk). Only what a direct load
 * cannot reach is read through helpers: an entry of a pid's numbers[] at a variable
 * level, the namespace behind it, the capability set (its layout changed in 6.3) and the
 * clock. The values are those of the helpers they replace: cred->uid/gid are what
 * bpf_get_current_uid_gid returns, the default hierarchy's cgroup what
 * bpf_get_current_cgroup_id returns, and task->comm is NUL-padded by the kernel.
 */
static __always_inline void vigil_fill_header(struct vigil_header *h, __u16 kind, struct task_struct *task,
					      __u64 key)
{
	struct task_struct *parent = task->real_parent;
	struct pid *tp = task->thread_pid;
	struct pid *gp = task->group_leader->thread_pid;
	struct pid *pp = parent->group_leader->thread_pid;
	unsigned int level = tp->level;
	const struct cred *cred = task->cred;

	struct vigil_task_state *state = vigil_task_state(task);
	h->kind = kind;
	h->flags = state && (state->flags & VIGIL_TASK_SETUP) ? VIGIL_FLAG_CONTAINER_SETUP : 0;
	h->time_ns = bpf_ktime_get_ns();
	h->pid = task->pid;
	h->tgid = task->tgid;
	h->ns_pid = vigil_pid_in_own_ns(gp, level);
	h->ppid = parent->tgid;
	h->ns_ppid = pp->level == level ? vigil_pid_in_own_ns(pp, level) : 0;
	h->uid = cred->uid.val;
	h->gid = cred->gid.val;
	h->mnt_ns = task->nsproxy->mnt_ns->ns.inum;
	{
		struct pid_namespace *ns = NULL;
		bpf_core_read(&ns, sizeof(ns), &tp->numbers[level & 31].ns);
		h->pid_ns = BPF_CORE_READ(ns, ns.inum);
	}
	h->kernel_rule = state ? state->kill_rule : 0;
	if (h->kernel_rule) h->flags |= VIGIL_FLAG_KERNEL_KILLED; /* set by enforce.bpf.c before its SIGKILL */
	/* kernel_cap_t is a u64 since 6.3 and two u32 before: 8 bytes either way. real_cred:
	 * an override (overlayfs acting with the mounter's creds) is not the task's own set. */
	bpf_core_read(&h->cap_effective, sizeof(h->cap_effective), &task->real_cred->cap_effective);
	h->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	h->container_key = key;
	/* Both names are NUL-padded in the kernel (strscpy_pad): 16 bytes copied as two words. */
	__u64 *comm = (__u64 *)h->comm, *pcomm = (__u64 *)h->parent_comm;
	comm[0] = *(__u64 *)&task->comm[0];
	comm[1] = *(__u64 *)&task->comm[8];
	pcomm[0] = *(__u64 *)&parent->comm[0];
	pcomm[1] = *(__u64 *)&parent->comm[8];
}

static __always_inline void *vigil_scratch_buf(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_scratch, &zero);
}

/* Counts a record that was not queued: under its container first, then host-wide. User
 * space reads the host-wide totals first, so what it sees there is already in the
 * per-container counts it reads next (unless evicted): nothing is reported twice. */
static __always_inline void vigil_count_lost(__u16 kind, __u64 key, __u32 reason)
{
	__u32 k = kind < VIGIL_KIND_MAX ? kind : 0;
	struct vigil_lost_key lk = { .container_key = key, .kind = k, .reason = reason };
	__u64 *c = bpf_map_lookup_elem(&vigil_lost_by_container, &lk);
	if (c) {
		*c += 1; /* this CPU's slot: no other writer */
	} else {
		__u64 one = 1;
		/* Another CPU may have made the key meanwhile: then count in this CPU's slot of it. */
		if (bpf_map_update_elem(&vigil_lost_by_container, &lk, &one, BPF_NOEXIST) < 0) {
			c = bpf_map_lookup_elem(&vigil_lost_by_container, &lk);
			if (c)
				*c += 1;
		}
	}
	__u64 *n = bpf_map_lookup_elem(reason == VIGIL_LOSS_BUDGET ? (void *)&vigil_shed : (void *)&vigil_lost, &k);
	if (n)
		*n += 1;
}

#define VIGIL_NS_PER_S 1000000000ULL

/*
 * The budget's marks, in eighths of the room above the pressure mark (ring size minus
 * pressure_bytes). A record's price doubles with each eighth the ring is fuller, up to
 * VIGIL_PRICE_STEPS doublings; the last two eighths are the reserve (1 MiB of the
 * default 16 MiB ring at 75%).
 *
 * Why the price stops at 32 tokens per started KiB: a container's start under runc is
 * about 230 records under its own key (prctl, mount, mknod... then its first exec), the
 * records a reader needs before the container's first real event. At 32 they cost some
 * 7,400 tokens: a fresh container with the default burst (20,000) gets its start and
 * its first events through even at the top of the ring. At 128 (the old top price) the
 * start alone cost more than the burst, so a container that started while another
 * flooded lost its own first events (its cat /etc/shadow was record 229) to its own
 * budget, which it had not exceeded by any sensible measure.
 */
#define VIGIL_PRICE_STEPS 5
#define VIGIL_RESERVE_STEP 6

/*
 * How long a container refused for budget stays out of the reserve: from its last
 * refusal. A flood is refused all the time (its bucket is empty whenever it tries), so
 * it never gets back in while it floods; a container that spent its bucket once and
 * went quiet is back in a second later.
 */
#define VIGIL_REFUSED_HOLD_NS VIGIL_NS_PER_S

/*
 * Takes cost tokens from the container's bucket: 1 if it had them. Shared by every CPU
 * without a lock (tracing programs cannot take bpf_spin_lock): the refill goes to the
 * one CPU whose compare-and-swap moves last_ns, at most once a millisecond; a take
 * that finds the bucket empty gives its token back. The clamp to burst can race with
 * takes and forgive a few of them: the budget is exact to a few records, not more.
 *
 * In the reserve (reserve set) a container is refused, and its hold starts again, if it
 * was refused in the last VIGIL_REFUSED_HOLD_NS or its bucket is less than half full:
 * tokens a flood earns while it floods buy room below the reserve only, and what one
 * container can put in the reserve before it is shut out is half a bucket at the top
 * price (10,000 / 32 tokens: 312 records of up to 1 KiB at the defaults), so no single
 * container, new or not, fills it. A refusal is remembered in the bucket (a plain
 * store: any CPU's recent time will do).
 */
static __always_inline int vigil_take_tokens(__u64 key, struct vigil_budget_config *bc, __s64 cost, int reserve)
{
	__u64 now = bpf_ktime_get_ns();
	struct vigil_bucket *b = bpf_map_lookup_elem(&vigil_budgets, &key);
	if (!b) {
		struct vigil_bucket fresh = { .tokens = (__s64)bc->burst - cost, .last_ns = now };
		bpf_map_update_elem(&vigil_budgets, &key, &fresh, BPF_NOEXIST);
		return 1;
	}
	__u64 last = b->last_ns;
	if (now > last + 1000000 && __sync_val_compare_and_swap(&b->last_ns, last, now) == last) {
		__u64 dt = now - last;
		if (dt > 10 * VIGIL_NS_PER_S) /* rate is at most 1e8 (user space checks): no overflow */
			dt = 10 * VIGIL_NS_PER_S;
		__s64 add = (__s64)(dt * bc->rate / VIGIL_NS_PER_S);
		if (__sync_fetch_and_add(&b->tokens, add) + add > (__s64)bc->burst)
			b->tokens = (__s64)bc->burst;
	}
	if (reserve && ((b->refused_ns && now - b->refused_ns < VIGIL_REFUSED_HOLD_NS) ||
			b->tokens < (__s64)(bc->burst / 2))) {
		b->refused_ns = now;
		return 0;
	}
	if (__sync_fetch_and_add(&b->tokens, -cost) >= cost)
		return 1;
	__sync_fetch_and_add(&b->tokens, cost);
	b->refused_ns = now;
	return 0;
}

/*
 * Sends size bytes of buf (a record: it starts with struct vigil_header); a record not
 * queued is counted, under its container, never silent. Every record is smaller than
 * the scratch buffer, so the mask changes no valid size: it is there for the verifier,
 * which cannot follow the range check through a register copy.
 *
 * Fairness. Below pressure_bytes unread nothing is limited and no bucket is touched
 * (the common path: one array lookup and one ring query). From there a container may
 * queue only what its token bucket pays for (rate per second, burst at most), a record
 * costing a token per started KiB, twice that for each eighth of the room above the
 * mark the ring is fuller, up to 32 (VIGIL_PRICE_STEPS): the flood's excess is dropped
 * here and counted as its own loss, and the price slows it until the ring stops filling.
 *
 * The last quarter of that room is a reserve (VIGIL_RESERVE_STEP): only a container
 * that has not been refused for budget in the last second may queue there. A flood is
 * refused all the time by then (its bucket is empty: that is how the ring got there),
 * so it cannot fill the last of the ring, and a container within its budget that sends
 * a record while the reader is behind finds room instead of a full ring. One ring, so
 * the kernel's order is kept for every container; a second ring reserved for containers
 * within budget would hold the same guarantee but split a container's records over two
 * rings whose order the reader would have to merge back.
 *
 * What the reserve cannot promise: its room is shared by every container within its
 * budget, each of which may put up to half a bucket's worth there (at the defaults 312
 * records, up to 312 KiB, of 1 MiB). Enough such containers sending at once while the
 * reader is behind (four busy ones, or about ten starting, ~100 KiB each) fill it
 * between them; a record that then finds the ring full is lost as ring_full, counted
 * under its own container as ever.
 *
 * Cgroup records (identity, not events) are never budgeted.
 *
 * Wakeups: a record wakes the reader only once wakeup_bytes are unread; below that the
 * reader finds it on its poll timer (a short one), so a quiet container's record waits
 * at most that long and a busy ring costs one wakeup per batch, not per record.
 */
static __always_inline void vigil_submit(void *buf, __u32 size, __u16 kind)
{
	if (size >= VIGIL_SCRATCH_SIZE || size < sizeof(struct vigil_header))
		return;
	barrier_var(size); /* keep clang from dropping the mask it proves redundant */
	size &= VIGIL_SCRATCH_SIZE - 1;
	__u64 key = ((struct vigil_header *)buf)->container_key;
	__u64 flags = 0;
	__u32 zero = 0;
	struct vigil_budget_config *bc = bpf_map_lookup_elem(&vigil_budget_config, &zero);
	if (bc && (bc->rate || bc->wakeup_bytes)) {
		__u64 unread = bpf_ringbuf_query(&vigil_events, BPF_RB_AVAIL_DATA);
		if (bc->rate && kind != VIGIL_KIND_CGROUP && unread >= bc->pressure_bytes) {
			__u64 ring = bpf_ringbuf_query(&vigil_events, BPF_RB_RING_SIZE);
			__u64 room = ring > bc->pressure_bytes ? ring - bc->pressure_bytes : 1;
			__u64 step = (unread - bc->pressure_bytes) * 8 / room;
			__s64 cost = (__s64)(1 + ((size - 1) >> 10)) << (step > VIGIL_PRICE_STEPS ? VIGIL_PRICE_STEPS : step);
			if (!vigil_take_tokens(key, bc, cost, step >= VIGIL_RESERVE_STEP)) {
				vigil_count_lost(kind, key, VIGIL_LOSS_BUDGET);
				return;
			}
		}
		if (bc->wakeup_bytes)
			flags = unread + size >= bc->wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&vigil_events, buf, size, flags) < 0)
		vigil_count_lost(kind, key, VIGIL_LOSS_RING_FULL);
}


/* The struct file behind a descriptor of the current task, or NULL. */
static __always_inline struct file *vigil_fd_file(struct task_struct *task, __s64 fd)
{
	if (fd < 0 || fd > 1048576)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if ((unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

#define VIGIL_S_IFMT 00170000
#define VIGIL_S_IFSOCK 0140000
#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10

static __always_inline struct sock *vigil_file_sock(struct file *f)
{
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & VIGIL_S_IFMT) != VIGIL_S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

static __always_inline void vigil_describe_sock(struct sock *sk, struct vigil_sock *out)
{
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->type = BPF_CORE_READ(sk, sk_type);
	out->protocol = BPF_CORE_READ(sk, sk_protocol);
	out->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	out->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	out->_pad0 = 0;
	__builtin_memset(out->local_addr, 0, 16);
	__builtin_memset(out->remote_addr, 0, 16);
	if (out->family == VIGIL_AF_INET) {
		bpf_core_read(out->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(out->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (out->family == VIGIL_AF_INET6) {
		bpf_core_read(out->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(out->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif
