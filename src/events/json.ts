// The JSON-lines rendering of an event. Byte for byte what JSON.stringify(event) gives,
// but the parts that repeat from event to event (the container, a process's argv, its
// capability names) are serialised once and reused: JSON.stringify of a whole event
// was the agent's largest cost per event. Only frozen objects and arrays are cached,
// so a value that could still change is never served stale.
import type { ProcessRef, VigilEvent } from './model.js';

const serialised = new WeakMap<object, string>();

function stringifyShared(value: object): string {
  if (!Object.isFrozen(value)) return JSON.stringify(value);
  let s = serialised.get(value);
  if (s === undefined) {
    s = JSON.stringify(value);
    serialised.set(value, s);
  }
  return s;
}

function renderProcess(p: ProcessRef): string {
  // Keys in ProcessRef order, as JSON.stringify would write them.
  return `{"pid":${p.pid},"nsPid":${p.nsPid},"ppid":${p.ppid},"parent":${JSON.stringify(p.parent)},"comm":${JSON.stringify(p.comm)},` +
    `"exe":${JSON.stringify(p.exe)},"args":${stringifyShared(p.args)},"argsTruncated":${p.argsTruncated},"uid":${p.uid},"gid":${p.gid},` +
    `"caps":${stringifyShared(p.caps)},"containerSetup":${p.containerSetup},"ancestors":${stringifyShared(p.ancestors)},"entered":${p.entered},` +
    `"stdio":${stringifyShared(p.stdio)},"exeWritten":${p.exeWritten},"exeInImage":${p.exeInImage},"parentExe":${JSON.stringify(p.parentExe)},"name":${JSON.stringify(p.name)}}`;
}

/** One event as a JSON line (without the newline). */
export function renderJson(e: VigilEvent): string {
  let out = '{';
  let first = true;
  // Walks the event's own keys so fields added later are written too, in insertion order.
  for (const key in e) {
    const value = (e as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    let rendered: string;
    if (key === 'container') rendered = stringifyShared(value as object);
    else if (key === 'process') rendered = renderProcess(value as ProcessRef);
    else rendered = JSON.stringify(value);
    out += (first ? '"' : ',"') + key + '":' + rendered;
    first = false;
  }
  return out + '}';
}
