/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The in-kernel kill (enforce.bpf.c): the kill rules user space compiled to clauses the
 * kernel can evaluate (src/policy/kernel-rules.ts). A clause is a conjunction of atoms;
 * a rule is the disjunction of its clauses. src/sensor/enforce.ts writes these structs
 * (its offsets mirror this file).
 */
#ifndef VIGIL_ENFORCE_H
#define VIGIL_ENFORCE_H

#define VIGIL_KCLAUSES 32      /* clauses in all */
#define VIGIL_KATOMS 8         /* atoms per clause */
#define VIGIL_KRULES 32        /* kernel rules: a bit each in the per-container masks */
#define VIGIL_KSTR 64          /* a string compared: 63 bytes and its NUL */
#define VIGIL_KSYSCALLS 512    /* system call numbers a clause can name */

/* Where a clause is evaluated. */
#define VIGIL_KWHERE_EXEC 1    /* sched_process_exec: after the new program is set up, before it runs */
#define VIGIL_KWHERE_ENTER 2   /* sys_enter of a listed system call */
#define VIGIL_KWHERE_EXIT 3    /* sys_exit of a listed system call: what it opened or connected to, as the kernel holds it */

/* struct vigil_katom.type */
#define VIGIL_KATOM_SETUP 1     /* the task is the runtime's (process.containerSetup) */
#define VIGIL_KATOM_STR 2       /* a string (arg: VIGIL_KSTR_*) is in a set (value: set id), op in hi nibble */
#define VIGIL_KATOM_ARGC_GT 3   /* size(process.args) > value (value 0 or 1) */
#define VIGIL_KATOM_STDIO_ANY 4 /* one of fds 0-2 is of a kind in the mask value (bit = VIGIL_STDIO_*) */
#define VIGIL_KATOM_STDIO_AT 5  /* fd arg is of a kind in the mask value */
#define VIGIL_KATOM_SYSCALL 6   /* the system call is listed for the clause (vigil_ksyscalls) */
/* At sys_exit only. An atom about a fact the call does not have (no socket of family
 * AF_INET/AF_INET6, no flags, no fd) never holds, negated or not. */
#define VIGIL_KATOM_PORT 7      /* the socket's remote port is in set value (vigil_kports) */
#define VIGIL_KATOM_NET 8       /* the socket's remote address is in set value (vigil_knets, LPM) */
#define VIGIL_KATOM_FAMILY 9    /* the socket's family: bit 0 AF_INET, bit 1 AF_INET6 in value */
#define VIGIL_KATOM_OFLAGS 10   /* open flags: value & flags, or bit (flags & O_ACCMODE) of arg */
#define VIGIL_KATOM_FAILED 11   /* the call returned an error */

/* arg of a VIGIL_KATOM_STR atom: low nibble the string, high nibble the comparison */
#define VIGIL_KSTR_COMM 0       /* process.comm */
#define VIGIL_KSTR_EXE_BASE 1   /* the executable's file name (process.exe after its last '/') */
#define VIGIL_KSTR_ARG0 2       /* process.args[0] */
#define VIGIL_KSTR_ARG1 3       /* process.args[1] */
#define VIGIL_KSTR_PATH 4       /* at sys_exit of an open: the path of the fd it returned (args.path) */
#define VIGIL_KSTR_EXE 5        /* at exec: the executable's whole path (process.exe) */
#define VIGIL_KSTR_COUNT 6
#define VIGIL_KOP_EQ 0
#define VIGIL_KOP_PREFIX 1
#define VIGIL_KOP_SUFFIX 2

struct vigil_katom {
	__u8 type;
	__u8 negate;    /* only for atoms the kernel decides exactly (setup, comm, argc, stdio) */
	__u8 arg;
	__u8 _pad;
	__u32 value;
};

struct vigil_kclause {
	__u32 rule;     /* kernel rule index: the bit in the masks; kill_rule = rule + 1 */
	__u8 where;     /* VIGIL_KWHERE_* ; 0: unused slot */
	__u8 natoms;
	__u16 _pad;
	struct vigil_katom atoms[VIGIL_KATOMS];
};

/* One entry (map vigil_kconf). */
struct vigil_kconf {
	__u32 enabled;      /* 0: nothing is killed (dry run, or not configured yet) */
	__u32 default_mask; /* rules on for a container not in vigil_kmask (not resolved yet) */
	__u32 nclauses;
	__u32 needs;        /* VIGIL_KNEED_*: facts some clause tests that cost a walk to read */
};

#define VIGIL_KNEED_EXE_PATH 1  /* the executable's whole path at exec */

/* Key of the string sets (LPM trie): the set id, then the bytes. Exact sets hold the
 * string and its NUL, prefix sets the string, suffix sets the string reversed. */
struct vigil_kstr_key {
	__u32 prefixlen;    /* bits, the set id's 32 included */
	__u32 set;          /* the atom's set (host byte order on both sides) */
	__u8 s[VIGIL_KSTR];
};

/* Key of vigil_kports: the set and a port (host byte order). */
struct vigil_kport_key {
	__u32 set;
	__u16 port;
	__u16 _pad;
};

/* Key of vigil_knets (LPM trie): set id, family (4 or 6), address in network order. An
 * IPv4-mapped IPv6 address is looked up as the IPv4 address, as user space compares it. */
struct vigil_knet_key {
	__u32 prefixlen;    /* bits: 32 (set) + 8 (family) + the network's prefix */
	__u32 set;
	__u8 family;
	__u8 addr[16];
};

#endif
