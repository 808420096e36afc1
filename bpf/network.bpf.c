// SPDX-License-Identifier: GPL-2.0
/*
 * TCP state changes of sockets that container tasks connected, listened or accepted
 * on (tracked by syscalls.bpf.c in vigil_tracked_socks). The change often happens in
 * softirq context, so the record carries the header saved with the socket.
 */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define VIGIL_TCP_CLOSE 7

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 skey = (__u64)sk;
	struct vigil_header *owner = bpf_map_lookup_elem(&vigil_tracked_socks, &skey);
	if (!owner)
		return 0;
	struct vigil_tcp_state e = {};
	__builtin_memcpy(&e.hdr, owner, sizeof(e.hdr));
	e.hdr.kind = VIGIL_KIND_TCP_STATE;
	e.hdr.flags &= VIGIL_FLAG_CONTAINER_SETUP; /* the owner's, not its payload's */
	e.hdr.size = sizeof(e);
	e.hdr.time_ns = bpf_ktime_get_ns();
	e.old_state = oldstate;
	e.new_state = newstate;
	vigil_describe_sock((struct sock *)sk, &e.sock);
	vigil_submit(&e, sizeof(e), VIGIL_KIND_TCP_STATE);
	if (newstate == VIGIL_TCP_CLOSE)
		bpf_map_delete_elem(&vigil_tracked_socks, &skey);
	return 0;
}
