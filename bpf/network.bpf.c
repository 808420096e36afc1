// SPDX-License-Identifier: GPL-2.0
/*
 * TCP state changes of sockets that container tasks connected, listened or accepted
 * on. The change often happens in softirq context, so the record carries the header of
 * the socket's owner, kept in the socket's own storage: it lives and dies with the
 * socket, so no flood of other sockets can evict it.
 *
 * How a socket gets its owner (syscalls.bpf.c leaves it in vigil_sock_pending, task
 * storage, or vigil_tracked_socks):
 * - connect and listen: at sys_enter, in the task's storage; their first state change
 *   (CLOSE to SYN_SENT, CLOSE to LISTEN) happens inside the call, in that task, and takes it.
 * - accept: the socket was made by its listener (in softirq) and inherits the listener's
 *   owner then (BPF_F_CLONE); accept's sys_exit names the accepting task, in its task
 *   storage (taken when the socket's next change runs in that task, a close) and in
 *   vigil_tracked_socks (taken by a change in softirq, a FIN from the peer). That LRU
 *   entry can be evicted by a flood: the socket then keeps the listener's owner, a task
 *   of the same container.
 * - an open that passed no tracked call (sendto with MSG_FASTOPEN, io_uring's connect and
 *   listen): its first state change runs in the task that opens it, which is the owner.
 * A newer owner (the socket connected again, passed to another task and used there)
 * replaces what is stored.
 */
#include "common.h"
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_TCP_ESTABLISHED 1
#define VIGIL_TCP_SYN_SENT 2
#define VIGIL_TCP_SYN_RECV 3
#define VIGIL_TCP_CLOSE 7
#define VIGIL_TCP_LISTEN 10

/* The watched ports (syscalls.bpf.c's map: the loader shares it by name). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} vigil_ports SEC(".maps");

struct vigil_sock_owner {
	struct vigil_header hdr;
	__u64 sk; /* the socket it was stored for: another one is its listener's, copied at creation */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct vigil_sock_owner);
} vigil_sock_owners SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct sock *s = (struct sock *)sk;
	struct vigil_tcp_state e = {};
	__u64 skey = (__u64)sk;
	struct vigil_header *fresh = NULL;
	struct vigil_sock_pending *pend = NULL;
	/* A task with no BPF task storage at all (nearly every host task) skips the helper call. */
	struct task_struct *task = bpf_get_current_task_btf();
	if (!bpf_core_field_exists(task->bpf_storage) || task->bpf_storage)
		pend = bpf_task_storage_get(&vigil_sock_pending, task, 0, 0);
	int from_lru = 0;
	if (pend && pend->sk == skey) {
		fresh = &pend->owner;
	} else {
		pend = NULL;
		fresh = bpf_map_lookup_elem(&vigil_tracked_socks, &skey);
		from_lru = fresh != NULL;
	}
	if (fresh) {
		__builtin_memcpy(&e.hdr, fresh, sizeof(e.hdr));
		struct vigil_sock_owner *kept = bpf_sk_storage_get(&vigil_sock_owners, s, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (kept) {
			__builtin_memcpy(&kept->hdr, &e.hdr, sizeof(kept->hdr));
			kept->sk = skey;
			if (pend)
				pend->sk = 0;
			if (from_lru)
				bpf_map_delete_elem(&vigil_tracked_socks, &skey);
		}
	} else {
		struct vigil_sock_owner *kept = bpf_sk_storage_get(&vigil_sock_owners, s, 0, 0);
		if (!kept) {
			/* An open no tracked call announced: a TCP Fast Open sendto, an io_uring
			 * connect or listen. An active or passive open runs in the task that makes
			 * it (never in softirq): a container task's socket is owned by that task. */
			if (oldstate != VIGIL_TCP_CLOSE || (newstate != VIGIL_TCP_SYN_SENT && newstate != VIGIL_TCP_LISTEN))
				return 0;
			struct vigil_config *cfg = vigil_get_config();
			__u64 key;
			if (!cfg || !cfg->enabled || !vigil_watched(task, cfg, &key))
				return 0;
			if (cfg->port_filter) {
				__u16 local = BPF_CORE_READ(s, __sk_common.skc_num);
				__u16 remote = bpf_ntohs(BPF_CORE_READ(s, __sk_common.skc_dport));
				if (!(local && bpf_map_lookup_elem(&vigil_ports, &local)) && !(remote && bpf_map_lookup_elem(&vigil_ports, &remote)))
					return 0;
			}
			kept = bpf_sk_storage_get(&vigil_sock_owners, s, 0, BPF_SK_STORAGE_GET_F_CREATE);
			if (!kept)
				return 0;
			vigil_fill_header(&kept->hdr, VIGIL_KIND_TCP_STATE, task, key);
			kept->sk = skey;
		}
		/* Inherited from the listener: the handshake before any accept is not reported
		 * (as before the socket had storage); what follows is, should accept's owner be lost. */
		if (kept->sk != skey && (newstate == VIGIL_TCP_SYN_RECV || newstate == VIGIL_TCP_ESTABLISHED))
			return 0;
		__builtin_memcpy(&e.hdr, &kept->hdr, sizeof(e.hdr));
	}
	e.hdr.kind = VIGIL_KIND_TCP_STATE;
	e.hdr.flags &= VIGIL_FLAG_CONTAINER_SETUP; /* the owner's, not its payload's */
	e.hdr.size = sizeof(e);
	e.hdr.time_ns = bpf_ktime_get_ns();
	e.old_state = oldstate;
	e.new_state = newstate;
	vigil_describe_sock(s, &e.sock);
	vigil_submit(&e, sizeof(e), VIGIL_KIND_TCP_STATE);
	if (newstate == VIGIL_TCP_CLOSE) {
		bpf_sk_storage_delete(&vigil_sock_owners, s);
		bpf_map_delete_elem(&vigil_tracked_socks, &skey);
	}
	return 0;
}
