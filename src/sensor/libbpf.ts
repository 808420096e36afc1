// Bindings to Debian's libbpf.so.1 through koffi: only the calls vigil uses.
// libbpf reports failure as NULL (with errno) or a negative error number; the
// wrappers in loader.ts turn both into SensorError with libbpf's own text.
import koffi from 'koffi';
import type { LibraryHandle, TypeObject } from 'koffi';

export type Pointer = unknown; // an opaque native pointer handed back to libbpf as is

export interface LibBpf {
  bpf_object__open_file(path: string, opts: ObjectOpenOptions | null): Pointer | null;
  bpf_object__load(obj: Pointer): number;
  bpf_object__close(obj: Pointer): void;
  bpf_object__next_program(obj: Pointer, prev: Pointer | null): Pointer | null;
  bpf_object__next_map(obj: Pointer, prev: Pointer | null): Pointer | null;
  bpf_object__find_map_by_name(obj: Pointer, name: string): Pointer | null;
  bpf_program__name(prog: Pointer): string;
  bpf_program__attach(prog: Pointer): Pointer | null;
  bpf_program__set_autoload(prog: Pointer, autoload: boolean): number;
  bpf_program__fd(prog: Pointer): number;
  bpf_program__section_name(prog: Pointer): string;
  bpf_link__destroy(link: Pointer): number;
  // For the self-measurement's re-checks (src/attest/programs.ts): links and programs by kernel id.
  bpf_link__fd(link: Pointer): number;
  bpf_link__disconnect(link: Pointer): void;
  bpf_link_get_fd_by_id(id: number): number;
  bpf_link_get_next_id(start: number, next: Buffer): number;
  bpf_prog_get_fd_by_id(id: number): number;
  bpf_map__name(map: Pointer): string;
  bpf_map__fd(map: Pointer): number;
  bpf_map__reuse_fd(map: Pointer, fd: number): number;
  bpf_map__set_max_entries(map: Pointer, n: number): number;
  bpf_map_update_elem(fd: number, key: Buffer, value: Buffer, flags: number): number;
  bpf_map_lookup_elem(fd: number, key: Buffer, value: Buffer): number;
  bpf_map_delete_elem(fd: number, key: Buffer): number;
  bpf_map_lookup_and_delete_elem(fd: number, key: Buffer, value: Buffer): number;
  bpf_map_get_next_key(fd: number, key: Buffer | null, next: Buffer): number;
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, len: Buffer): number;
  libbpf_strerror(err: number, buf: Buffer, size: number): number;
  ring_buffer__new(mapFd: number, cb: Pointer, ctx: null, opts: null): Pointer | null;
  ring_buffer__poll(rb: Pointer, timeoutMs: number): number;
  ring_buffer__consume(rb: Pointer): number;
  ring_buffer__free(rb: Pointer): void;
  btf__load_vmlinux_btf(): Pointer | null;
  btf__parse(path: string, ext: null): Pointer | null;
  btf__find_by_name_kind(btf: Pointer, name: string, kind: number): number;
  btf__free(btf: Pointer): void;
}

export interface ObjectOpenOptions {
  sz: number;
  object_name: string | null;
  relaxed_maps: boolean;
  pin_root_path: string | null;
  _removed_attach_prog_fd: number;
  kconfig: string | null;
  btf_custom_path: string | null;
  kernel_log_buf: null;
  kernel_log_size: number;
  kernel_log_level: number;
}

let cached: { lib: LibBpf; sampleProto: TypeObject } | undefined;

export class LibBpfMissingError extends Error {
  readonly code = 'VIGIL_LIBBPF_MISSING';
}

/** Loads libbpf.so.1 once per thread. */
export function libbpf(): { lib: LibBpf; sampleProto: TypeObject } {
  if (cached) return cached;
  let handle: LibraryHandle;
  try {
    handle = koffi.load('libbpf.so.1');
  } catch (err) {
    throw new LibBpfMissingError(`cannot load libbpf.so.1 (${(err as Error).message}): install Debian's libbpf1 package (scripts/bootstrap.sh does)`);
  }
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  koffi.opaque('ring_buffer');
  koffi.opaque('btf');
  // Mirrors struct bpf_object_open_opts of libbpf 1.x (the `__u32 :32` stub included).
  koffi.struct('bpf_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    _removed_attach_prog_fd: 'uint32_t',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
    kernel_log_buf: 'char *',
    kernel_log_size: 'size_t',
    kernel_log_level: 'uint32_t',
  });
  const sampleProto = koffi.proto('int vigil_ring_sample(void *ctx, void *data, size_t size)');
  const f = (sig: string) => handle.func(sig);
  const lib: LibBpf = {
    bpf_object__open_file: f('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
    bpf_object__load: f('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: f('void bpf_object__close(bpf_object *obj)'),
    bpf_object__next_program: f('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: f('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)'),
    bpf_object__find_map_by_name: f('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    bpf_program__name: f('const char *bpf_program__name(bpf_program *prog)'),
    bpf_program__attach: f('bpf_link *bpf_program__attach(bpf_program *prog)'),
    bpf_program__set_autoload: f('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__fd: f('int bpf_program__fd(bpf_program *prog)'),
    bpf_program__section_name: f('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_link__destroy: f('int bpf_link__destroy(bpf_link *link)'),
    bpf_link__fd: f('int bpf_link__fd(const bpf_link *link)'),
    bpf_link__disconnect: f('void bpf_link__disconnect(bpf_link *link)'),
    bpf_link_get_fd_by_id: f('int bpf_link_get_fd_by_id(uint32_t id)'),
    bpf_link_get_next_id: f('int bpf_link_get_next_id(uint32_t start, _Out_ uint32_t *next)'),
    bpf_prog_get_fd_by_id: f('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_map__name: f('const char *bpf_map__name(bpf_map *map)'),
    bpf_map__fd: f('int bpf_map__fd(bpf_map *map)'),
    bpf_map__reuse_fd: f('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    bpf_map__set_max_entries: f('int bpf_map__set_max_entries(bpf_map *map, uint32_t n)'),
    bpf_map_update_elem: f('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_lookup_elem: f('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
    bpf_map_delete_elem: f('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_lookup_and_delete_elem: f('int bpf_map_lookup_and_delete_elem(int fd, const void *key, _Out_ void *value)'),
    bpf_map_get_next_key: f('int bpf_map_get_next_key(int fd, const void *key, _Out_ void *next)'),
    bpf_obj_get_info_by_fd: f('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ void *len)'),
    libbpf_strerror: f('int libbpf_strerror(int err, _Out_ char *buf, size_t size)'),
    ring_buffer__new: f('ring_buffer *ring_buffer__new(int fd, vigil_ring_sample *cb, void *ctx, void *opts)'),
    ring_buffer__poll: f('int ring_buffer__poll(ring_buffer *rb, int timeout_ms)'),
    ring_buffer__consume: f('int ring_buffer__consume(ring_buffer *rb)'),
    ring_buffer__free: f('void ring_buffer__free(ring_buffer *rb)'),
    btf__load_vmlinux_btf: f('btf *btf__load_vmlinux_btf(void)'),
    btf__parse: f('btf *btf__parse(const char *path, void *btf_ext)'),
    btf__find_by_name_kind: f('int btf__find_by_name_kind(const btf *btf, const char *name, uint32_t kind)'),
    btf__free: f('void btf__free(btf *btf)'),
  } as LibBpf;
  cached = { lib, sampleProto };
  return cached;
}

/** libbpf's text for a (negative or positive) error number. */
export function libbpfError(err: number): string {
  const { lib } = libbpf();
  const buf = Buffer.alloc(256);
  lib.libbpf_strerror(Math.abs(err), buf, buf.length);
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

export { koffi };

type SyscallFn = (nr: number, ...typedArgs: unknown[]) => number | bigint;
let syscallFn: SyscallFn | undefined;

/**
 * pidfd_open(2), through libc's syscall(2) (glibc has a wrapper only from 2.36): a file
 * descriptor for a process, or for a thread with PIDFD_THREAD. -1 with errno on failure.
 */
export function pidfdOpen(pid: number, flags: number): number {
  const SYS_PIDFD_OPEN = 434; // the same number on every architecture (a new-style syscall)
  if (!syscallFn) syscallFn = koffi.load('libc.so.6').func('long syscall(long number, ...)') as SyscallFn;
  return Number(syscallFn(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', flags));
}
