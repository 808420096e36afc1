// SPDX-License-Identifier: GPL-2.0
/*
 * TCP state changes of sockets that container tasks connected, listened or accepted
 * on (tracked by syscalls.bpf.c in vigil_tracked_socks, then in the socket's storage).
 * The change often happens in softirq context, so the record carries the header saved
 * with the socket.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_TCP_CLOSE 7

/*
 * The owner of a socket that has changed state once, in the socket's own storage: it
 * lives and dies with the socket, so no flood of other sockets can evict it. The system
 * call side leaves the owner in the shared LRU vigil_tracked_socks (at connect, listen,
 * accept); the first state change moves it here and frees the LRU entry. A newer LRU
 * entry (the socket connected again, or passed to another process and used there)
 * replaces what is stored. Only the window between the call and the socket's first state
 * change is still exposed to eviction (for an accepted socket, until its close begins).
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_header);
} vigil_sock_owners SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct sock *s = (struct sock *)sk;
	struct vigil_tcp_state e = {};
	__u64 skey = (__u64)sk;
	struct vigil_header *fresh = bpf_map_lookup_elem(&vigil_tracked_socks, &skey);
	if (fresh) {
		__builtin_memcpy(&e.hdr, fresh, sizeof(e.hdr));
		struct vigil_header *kept = bpf_sk_storage_get(&vigil_sock_owners, s, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (kept) {
			__builtin_memcpy(kept, &e.hdr, sizeof(*kept));
			bpf_map_delete_elem(&vigil_tracked_socks, &skey);
		}
	} else {
		struct vigil_header *kept = bpf_sk_storage_get(&vigil_sock_owners, s, 0, 0);
		if (!kept)
			return 0;
		__builtin_memcpy(&e.hdr, kept, sizeof(e.hdr));
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
