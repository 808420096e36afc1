// The paper's one-line text rendering of an event:
// 2023/10/11 15:11:56 [INSECURE] Unsafe:[opening passwd], Event:{host:h1, syscall: openat,
// args:..., time: 1697008319216479547}, Container:{image: ubuntu, id: a3da9f2deb4b, name: x},
// Process:{proc: cat, pid: 593176, parent: bash, args: cat /etc/passwd, caps: CHOWN,...}
import type { VigilEvent } from './model.js';

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local wall-clock time of an event, as the paper prints it: YYYY/MM/DD hh:mm:ss. */
export function formatLocalTime(timeNs: string): string {
  const d = new Date(Number(BigInt(timeNs) / 1_000_000n));
  return `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Control characters (C0, DEL, C1, the Unicode line separators), the backslash, and the
// bytes that were not UTF-8 (decoded as U+DC80..U+DCFF: src/events/utf8.ts).
const UNSAFE = /[\x00-\x1f\x7f-\x9f\\\u2028\u2029\udc80-\udcff]/;
const UNSAFE_ALL = /[\x00-\x1f\x7f-\x9f\\\u2028\u2029\udc80-\udcff]/g;

/**
 * A string a container controls (argv, names, comm) made safe for a one-line log: a
 * newline in an argument must not end the event's line and start a forged one. Escapes
 * are C-style and unambiguous: the backslash itself is doubled, and a byte that was not
 * UTF-8 is \xNN (never a replacement character two different names would share).
 */
export function escapeText(s: string): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(UNSAFE_ALL, (c) => {
    if (c === '\\') return '\\\\';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    const code = c.charCodeAt(0);
    // A byte that was not UTF-8 is shown as that byte: \xff, as a C string would write it.
    if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16)}`;
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}

/** key=value pairs; a name whose absolute path differs shows it as the paper does: name=passwd(/etc/passwd). */
function renderArgs(args: VigilEvent['args']): string {
  const path = typeof args['path'] === 'string' ? args['path'] : undefined;
  const nameKey = ['name', 'filename', 'linkpath', 'target'].find((k) => typeof args[k] === 'string');
  const parts: string[] = [];
  for (const [k, v] of Object.entries(args)) {
    if (k === 'path' && nameKey !== undefined) continue;
    // Every variable's name of an exec: in the JSON event; the line keeps the values that matter (env_values).
    if (k === 'env_names') continue;
    let text = Array.isArray(v) ? v.join(' ') : String(v);
    if (k === nameKey && path !== undefined && path !== text) text = `${text}(${path})`;
    parts.push(`${k}=${escapeText(text)}`);
  }
  return parts.join(' ');
}

export function renderText(e: VigilEvent): string {
  // An allow-list violation names the call in the rule, as the paper's lines do: Unsafe:[syscall not in allow-list: ptrace].
  const rules = e.args['not_in_allowlist'] === true ? e.verdict.rules.map((r) => (r === 'syscall not in allow-list' ? `${r}: ${e.syscall}` : r)) : e.verdict.rules;
  const verdict = e.verdict.level === 'INSECURE' ? `[INSECURE] Unsafe:[${rules.map(escapeText).join(', ')}], ` : `[${e.verdict.level}] `;
  const ret = e.ret === null ? '' : `, ret: ${e.ret}${e.error ? `(${e.error})` : ''}`;
  const event = `Event:{host:${escapeText(e.host)}, syscall: ${e.syscall}, args:${renderArgs(e.args)}${ret}, time: ${e.time}}`;
  const c = e.container;
  const container = `Container:{image: ${escapeText(c.image || '?')}, id: ${c.id ? c.id.slice(0, 12) : '?'}, name: ${escapeText(c.name || '?')}}`;
  const p = e.process;
  // comm is the process's to set (PR_SET_NAME): the executable the kernel ran is shown beside it.
  const proc = `Process:{proc: ${escapeText(p.comm)}, exe: ${escapeText(p.exe || '?')}, pid: ${p.pid}, parent: ${escapeText(p.parent)}, args: ${escapeText(p.args.join(' '))}${p.argsTruncated ? '…' : ''}, caps: ${p.caps.join(',')}}`;
  return `${formatLocalTime(e.time)} ${verdict}${event}, ${container}, ${proc}`;
}
