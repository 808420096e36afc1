// bpf/events.h and src/events/layout.ts must agree byte for byte: this compiles a
// probe against the header with the host C compiler and compares every offset and
// size the TypeScript side uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LAYOUTS, RECORD_KIND, KIND_MAX, ARGS_MAX, FILENAME_MAX, COMM_LEN, CGROUP_MODE, FLAG_TRUNCATED, FLAG_CONTAINER_SETUP, STR_MAX, PATH_MAX, BLOB_MAX,
  ARG, EMIT, RULE_FLAG, SYSCALL_FLAG, STDIO_KIND,
} from '../../src/events/layout.js';

const bpfDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bpf');
const cc = spawnSync('cc', ['--version']).status === 0 ? 'cc' : undefined;

test('record layouts in layout.ts match bpf/events.h', { skip: cc ? undefined : 'no C compiler (cc) on this host' }, () => {
  const fieldName = (f: string) => (f === 'size_field' ? 'size' : f);
  const lines: string[] = [];
  for (const [struct, fields] of Object.entries(LAYOUTS)) {
    for (const field of Object.keys(fields)) {
      const expr = field === 'size' ? `sizeof(struct ${struct})` : `offsetof(struct ${struct}, ${fieldName(field)})`;
      lines.push(`  printf("%s.%s=%zu\\n", "${struct}", "${field}", (size_t)(${expr}));`);
    }
  }
  const constants: Record<string, number> = {
    VIGIL_KIND_EXEC: RECORD_KIND.EXEC, VIGIL_KIND_FORK: RECORD_KIND.FORK, VIGIL_KIND_EXIT: RECORD_KIND.EXIT,
    VIGIL_KIND_MAX: KIND_MAX, VIGIL_ARGS_MAX: ARGS_MAX, VIGIL_FILENAME_MAX: FILENAME_MAX, VIGIL_COMM_LEN: COMM_LEN,
    VIGIL_CGROUP_V2: CGROUP_MODE.V2, VIGIL_CGROUP_V1_MEMORY: CGROUP_MODE.V1_MEMORY, VIGIL_FLAG_TRUNCATED: FLAG_TRUNCATED, VIGIL_FLAG_CONTAINER_SETUP: FLAG_CONTAINER_SETUP,
    VIGIL_KIND_SYSCALL: RECORD_KIND.SYSCALL, VIGIL_KIND_CAPABILITY: RECORD_KIND.CAPABILITY, VIGIL_KIND_TCP_STATE: RECORD_KIND.TCP_STATE,
    VIGIL_STR_MAX: STR_MAX, VIGIL_PATH_MAX: PATH_MAX, VIGIL_BLOB_MAX: BLOB_MAX,
    VIGIL_ARG_NONE: ARG.NONE, VIGIL_ARG_RET: ARG.RET, VIGIL_ARG_CWD: ARG.CWD,
    VIGIL_EMIT_ALWAYS: EMIT.ALWAYS, VIGIL_EMIT_ON_ERROR: EMIT.ON_ERROR,
    VIGIL_RULE_PATH_FILTER: RULE_FLAG.PATH_FILTER, VIGIL_RULE_PORT_FILTER: RULE_FLAG.PORT_FILTER,
    VIGIL_RULE_BLOB_LEN_PTR: RULE_FLAG.BLOB_LEN_PTR, VIGIL_RULE_TRACK_SOCK: RULE_FLAG.TRACK_SOCK,
    VIGIL_SC_RAW: SYSCALL_FLAG.RAW, VIGIL_SC_FD_PATH: SYSCALL_FLAG.FD_PATH, VIGIL_SC_SOCK: SYSCALL_FLAG.SOCK, VIGIL_SC_PATH_CUT: SYSCALL_FLAG.PATH_CUT, VIGIL_SC_NOT_ENTERED: SYSCALL_FLAG.NOT_ENTERED, VIGIL_SC_STR_CUT: SYSCALL_FLAG.STR_CUT,
    ...Object.fromEntries(Object.entries(STDIO_KIND).map(([n, v]) => [`VIGIL_STDIO_${n}`, v])),
  };
  for (const name of Object.keys(constants)) lines.push(`  printf("const.%s=%lld\\n", "${name}", (long long)(${name}));`);
  const dir = mkdtempSync(join(tmpdir(), 'vigil-layout-'));
  const src = join(dir, 'probe.c');
  writeFileSync(src, `#include <stdio.h>\n#include <stddef.h>\n#include <linux/types.h>\n#include "events.h"\nint main(void) {\n${lines.join('\n')}\n  return 0;\n}\n`);
  execFileSync(cc as string, ['-I', bpfDir, '-o', join(dir, 'probe'), src]);
  const out = execFileSync(join(dir, 'probe'), { encoding: 'utf8' });
  const c = Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]).map(([k, v]) => [k, Number(v)]));
  for (const [struct, fields] of Object.entries(LAYOUTS)) {
    for (const [field, offset] of Object.entries(fields)) assert.equal(offset, c[`${struct}.${field}`], `${struct}.${field}: layout.ts says ${offset}, events.h says ${c[`${struct}.${field}`]}`);
  }
  for (const [name, value] of Object.entries(constants)) assert.equal(value, c[`const.${name}`], `${name} differs`);
});
