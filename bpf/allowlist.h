/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The system-call allow-list of each container's image (src/analysis), checked at
 * sys_enter. User space loads one bitmap per container key when it has analysed the
 * image; a call outside it is reported from here, before user space sees anything, once
 * per container and call, and with the policy's `kill` the task gets SIGKILL at that
 * call (bpf_send_signal: the call itself may complete, no instruction after it runs;
 * making it fail is the seccomp profile's job).
 *
 * The start race: a container's first calls run before user space can have loaded its
 * list (the image is analysed when the container appears). Until then each call is
 * remembered in vigil_allow_pending; user space, once the list is in, reads that bitmap
 * and reports every call outside the list that ran before it (not killed: it is past).
 * Included by syscalls.bpf.c after arg_of.
 *
 * The runtime's own setup (VIGIL_TASK_SETUP: runc's init until it execs the entrypoint)
 * is not checked, as a seccomp profile applies from that exec on.
 */
#ifndef VIGIL_ALLOWLIST_H
#define VIGIL_ALLOWLIST_H

#include "common.h"
#include "kill.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct vigil_allowlist);
} vigil_allowlists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct vigil_allow_pending);
} vigil_allow_pending SEC(".maps");

/* The word of a bit; the mask is for the verifier, which loses the bound clang proves. */
static __always_inline __u32 vigil_word_of(__u32 bit)
{
	__u32 w = bit >> 6;
	barrier_var(w);
	return w & (VIGIL_ALLOW_WORDS - 1);
}

static __always_inline int vigil_bit_set(const __u64 *words, __u32 bit)
{
	return (words[vigil_word_of(bit)] >> (bit & 63)) & 1;
}

/* A call the kernel could not check or report now: user space reports it from the bitmap. */
static __always_inline void vigil_note_pending(__u64 key, __u32 bit)
{
	struct vigil_allow_pending *p = bpf_map_lookup_elem(&vigil_allow_pending, &key);
	if (!p) {
		struct vigil_allow_pending zero = {};
		bpf_map_update_elem(&vigil_allow_pending, &key, &zero, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&vigil_allow_pending, &key);
		if (!p)
			return; /* more containers starting at once than the map holds */
	}
	__u64 mask = 1ull << (bit & 63);
	__u64 *w = &p->seen[vigil_word_of(bit)];
	if (!(*w & mask))
		__sync_fetch_and_or(w, mask);
}

/*
 * bit: VIGIL_ALLOW_BIT of the call (the x86-64 number, VIGIL_MAX_SYSCALL + the i386 number
 * of a compat call, VIGIL_ALLOW_OTHER for x32 and numbers beyond any table).
 */
static __always_inline void vigil_check_allowlist(struct task_struct *task, __u64 key, __u32 bit, struct pt_regs *regs,
						  __u32 nr, __u16 abi_flags, int compat)
{
	struct vigil_task_state *st = vigil_task_state(task);
	if (st && (st->flags & VIGIL_TASK_SETUP))
		return;
	struct vigil_allowlist *al = bpf_map_lookup_elem(&vigil_allowlists, &key);
	if (!al) {
		vigil_note_pending(key, bit);
		return;
	}
	if ((al->flags & VIGIL_AL_ALLOW_ALL) || vigil_bit_set(al->allowed, bit))
		return;

	/* Outside the list. Reported once per container and call (the first thread to set the
	 * bit reports it); with kill, every such call is killed and reported. */
	__u64 mask = 1ull << (bit & 63);
	__u64 *w = &al->reported[vigil_word_of(bit)];
	int first = !(*w & mask) && !(__sync_fetch_and_or(w, mask) & mask);
	int kill = (al->flags & VIGIL_AL_KILL) != 0;
	if (!first && !kill && !(al->flags & VIGIL_AL_REPORT_EVERY))
		return;
	int killed = kill && bpf_send_signal(9) == 0;
	if (killed)
		vigil_kill_sharers();

	struct vigil_syscall *e = vigil_scratch_buf();
	if (!e)
		return;
	__builtin_memset(e, 0, offsetof(struct vigil_syscall, data));
	vigil_fill_header(&e->hdr, VIGIL_KIND_SYSCALL, task, key);
	if (killed)
		e->hdr.flags |= VIGIL_FLAG_KERNEL_KILLED;
	else if (kill)
		e->hdr.flags |= VIGIL_FLAG_KILL_FAILED;
	e->hdr.size = offsetof(struct vigil_syscall, data);
	for (int i = 0; i < 6; i++)
		e->args[i] = arg_of(regs, i, compat);
	e->nr = nr;
	e->sflags = VIGIL_SC_RAW | VIGIL_SC_NOT_ALLOWED | abi_flags;
	/* Not vigil_submit (no budget: one report per container and call, and it wakes the reader
	 * at once). A report the ring buffer has no room for is counted lost and its call set in
	 * the container's vigil_allow_pending bitmap, which the agent reads every second and
	 * reports from (a flood must not hide the one report a call gets). */
	if (bpf_ringbuf_output(&vigil_events, e, offsetof(struct vigil_syscall, data), 0) < 0) {
		vigil_count_lost(VIGIL_KIND_SYSCALL, key, VIGIL_LOSS_RING_FULL);
		vigil_note_pending(key, bit);
	}
}

#endif
