// The log directory: append-only segment files of entry lines and seal lines.
//
//   DIR/segment-0000000001.jsonl, segment-0000000002.jsonl, ...
//
// Entries are buffered and written once per event-loop turn; a batch is sealed (written,
// fsync'd, its seal line written and fsync'd, then handed to onSeal for anchoring) when it
// reaches batchSize entries, when batchMs have passed since its first entry, at once after
// an INSECURE entry, and at close. A segment is only ever left right after a seal line, so
// each segment but the first starts where the previous one's last seal left the chain.
//
// Restart: only the last segment (and, when it holds no seal yet, the previous one's last
// seal) is read. A crash can leave a partial last line, never a partial seal that was
// handed on: a seal is fsync'd before onSeal sees it. The partial line lies after the last
// complete line, so after every sealed batch; it is cut off (ftruncate to the end of the
// last complete line: no byte of a sealed batch is touched) and reported in `recovery`
// with its length and SHA-256 so the agent writes it into the log as an entry. Complete
// entries after the last seal are checked (chain, hash, seq) and sealed in the next batch.
// Anything else that does not check (a damaged line, a broken chain) stops the open: the
// writer never appends to a log it cannot continue.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { CompactRange, leafHash } from './merkle.js';
import { ZERO_HASH, chainLine, checkpointOf, parseEntryLine, parseSealLine, recomputeHash, sealLine, seqOf, type Seal } from './chain.js';

export class LogError extends Error {
  readonly code = 'LOG';
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'LogError'; }
}

const SEGMENT = /^segment-(\d{10})\.jsonl$/;
export function segmentName(n: number): string { return `segment-${String(n).padStart(10, '0')}.jsonl`; }

/** The segment files of a log directory, in order. */
export function listSegments(dir: string): Array<{ n: number; path: string }> {
  let names: string[];
  try { names = readdirSync(dir); } catch (e) { throw new LogError(`log directory ${dir}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  return names.flatMap((name) => { const m = SEGMENT.exec(name); return m ? [{ n: Number(m[1]), path: join(dir, name) }] : []; }).sort((a, b) => a.n - b.n);
}

/** Calls fn for each complete line of buf (without its newline); returns the offset after the last newline. */
export function forEachLine(buf: Buffer, fn: (line: Buffer, lineNo: number, end: number) => void): number {
  let start = 0;
  let lineNo = 0;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) return start;
    lineNo++;
    fn(buf.subarray(start, nl), lineNo, nl + 1);
    start = nl + 1;
  }
}

export interface LogWriterOptions {
  /** Seal after this many entries (default 1000). */
  batchSize?: number;
  /** Seal this long after a batch's first entry (default 1000 ms). */
  batchMs?: number;
  /** Start a new segment after a seal once the current one holds this many bytes (default 64 MiB). */
  segmentBytes?: number;
  /** The entry's canonical JSON (default JSON.stringify); must start with its seq member. */
  render?: (entry: LogEntryInput) => string;
  /** Hears every seal, after it is durable. */
  onSeal?: (seal: Seal) => void;
  /** Hears write failures (once per failing stretch); entries stay buffered and are retried. */
  onError?: (message: string) => void;
}

/** What the writer needs of an entry: it assigns `seq`, reads `verdict.level`. */
export interface LogEntryInput { seq: number; verdict?: { level?: string } }

export interface Recovery {
  /** Bytes of a partial last line that was cut off (0: none), and their SHA-256. */
  tornBytes: number;
  tornSha256: string;
  /** Complete entries found after the last seal, sealed with the next batch. */
  unsealed: number;
  /** The last seal found, if any. */
  lastSeal: Seal | undefined;
}

interface State { segment: number; batch: number; head: Buffer; range: CompactRange; checkpoint: Buffer; nextSeq: number }

export class LogWriter {
  private fd = -1;
  private size = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private batchCount = 0;
  private batchFirstSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private closed = false;
  private readonly batchSize: number;
  private readonly batchMs: number;
  private readonly segmentBytes: number;
  private readonly render: (e: LogEntryInput) => string;

  private constructor(readonly dir: string, private state: State, readonly recovery: Recovery, private readonly opts: LogWriterOptions) {
    this.batchSize = opts.batchSize ?? 1000;
    this.batchMs = opts.batchMs ?? 1000;
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.render = opts.render ?? ((e) => JSON.stringify(e));
  }

  /** Opens (creating) the log in `dir`, recovering from a crash as the header says. */
  static open(dir: string, opts: LogWriterOptions = {}): LogWriter {
    try { mkdirSync(dir, { recursive: true, mode: 0o750 }); } catch (e) { throw new LogError(`log directory ${dir}: cannot create it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
    const segments = listSegments(dir);
    const genesis = (): State => ({ segment: 1, batch: 0, head: ZERO_HASH, range: new CompactRange(), checkpoint: ZERO_HASH, nextSeq: 1 });
    const recovery: Recovery = { tornBytes: 0, tornSha256: '', unsealed: 0, lastSeal: undefined };
    let state = genesis();
    let unsealedFirst = 0;
    const last = segments[segments.length - 1];
    if (last) {
      state.segment = last.n;
      let buf = readFileSync(last.path);
      const complete = forEachLine(buf, () => undefined);
      if (complete < buf.length) {
        const torn = buf.subarray(complete);
        recovery.tornBytes = torn.length;
        recovery.tornSha256 = createHash('sha256').update(torn).digest('hex');
        const fd = openSync(last.path, 'r+');
        try { ftruncateSync(fd, complete); fsyncSync(fd); } finally { closeSync(fd); }
        buf = buf.subarray(0, complete);
      }
      // Where the chain stands at the start of the unsealed tail.
      let lastSealEnd = -1;
      forEachLine(buf, (line, lineNo, end) => {
        const seal = parseSealLine(line, `${last.path} line ${lineNo}`);
        if (seal) { recovery.lastSeal = seal; lastSealEnd = end; }
      });
      if (!recovery.lastSeal && segments.length > 1) {
        const prev = segments[segments.length - 2] as { path: string };
        const pbuf = readFileSync(prev.path);
        let lastLine = 0;
        forEachLine(pbuf, (line, lineNo) => {
          const seal = parseSealLine(line, `${prev.path} line ${lineNo}`);
          lastLine = lineNo;
          if (seal) recovery.lastSeal = seal;
          else if (recovery.lastSeal) recovery.lastSeal = undefined;
        });
        if (!recovery.lastSeal) throw new LogError(`${prev.path} does not end with a seal line (line ${lastLine}), yet ${last.path} follows it: the log directory is damaged`);
      }
      if (recovery.lastSeal) {
        const s = recovery.lastSeal;
        state = {
          segment: last.n, batch: s.batch, head: Buffer.from(s.head, 'hex'), checkpoint: Buffer.from(s.checkpoint, 'hex'), nextSeq: s.lastSeq + 1,
          range: CompactRange.restore(s.treeSize, s.range.map((h) => Buffer.from(h, 'hex'))),
        };
      }
      const tail = lastSealEnd >= 0 ? buf.subarray(lastSealEnd) : buf;
      const lineBase = lastSealEnd >= 0 ? buf.subarray(0, lastSealEnd).filter((b) => b === 10).length : 0;
      forEachLine(tail, (line, n) => {
        const where = `${last.path} line ${lineBase + n}`;
        const e = parseEntryLine(line);
        if (!e) throw new LogError(`${where} is neither an entry nor a seal: the log is damaged; it is kept as it is for the verifier, and the agent will not append to it`);
        const seq = seqOf(e.body);
        if (!e.prev.equals(state.head)) throw new LogError(`${where}: its chain.prev is not the previous entry's hash: the log is damaged`);
        if (!recomputeHash(e.prev, e.body).equals(e.hash)) throw new LogError(`${where}: its bytes do not give its chain.hash: the log is damaged`);
        if (seq !== state.nextSeq) throw new LogError(`${where}: seq ${seq ?? '(none)'} where ${state.nextSeq} is next: the log is damaged`);
        if (recovery.unsealed === 0) unsealedFirst = seq;
        recovery.unsealed++;
        state.range.append(leafHash(e.hash));
        state.head = e.hash;
        state.nextSeq++;
      });
    }
    const w = new LogWriter(dir, state, recovery, opts);
    w.openSegment(state.segment);
    w.batchCount = recovery.unsealed;
    w.batchFirstSeq = unsealedFirst;
    if (w.batchCount > 0) w.armTimer();
    return w;
  }

  private openSegment(n: number): void {
    const path = join(this.dir, segmentName(n));
    try {
      this.fd = openSync(path, 'a', 0o640);
    } catch (e) {
      throw new LogError(`log segment ${path}: cannot open it for appending (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    this.size = fstatSync(this.fd).size;
    this.state.segment = n;
  }

  get nextSeq(): number { return this.state.nextSeq; }
  get treeSize(): number { return this.state.range.size; }
  get lastCheckpoint(): Buffer { return this.state.checkpoint; }
  /** Entries appended since the last seal. */
  get unsealed(): number { return this.batchCount; }

  /** Appends an entry, setting its seq to the log's next one. Seals at once after an INSECURE entry. */
  append(entry: LogEntryInput): void {
    if (this.closed) throw new LogError('the log is closed');
    entry.seq = this.state.nextSeq;
    const { line, hash } = chainLine(this.render(entry), this.state.head);
    this.state.nextSeq++;
    this.state.head = hash;
    this.state.range.append(leafHash(hash));
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.batchCount++ === 0) { this.batchFirstSeq = entry.seq; this.armTimer(); }
    if (entry.verdict?.level === 'INSECURE') this.seal('insecure');
    else if (this.batchCount >= this.batchSize) this.seal('count');
    else if (this.pendingBytes >= 256 * 1024) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; this.flush(); });
    }
  }

  private armTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.seal('time'); }, this.batchMs);
    this.timer.unref();
  }

  /** Writes buffered lines (no fsync). Returns false when the write failed (they stay buffered). */
  flush(): boolean {
    if (this.pending.length === 0 || this.fd < 0) return this.pending.length === 0;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    if (!this.writeAll(bytes)) return false;
    this.pending = [];
    this.pendingBytes = 0;
    return true;
  }

  /** Appends bytes, or cuts a partial write back off and reports: the file never ends mid-line for long. */
  private writeAll(bytes: Buffer, sync = false): boolean {
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done);
      if (sync) fsyncSync(this.fd);
    } catch (e) {
      try { ftruncateSync(this.fd, this.size); } catch { /* the next open cuts the partial line */ }
      if (!this.failing) this.opts.onError?.(`cannot write the log segment in ${this.dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; entries are kept in memory and written when it works again`);
      this.failing = true;
      return false;
    }
    this.size += bytes.length;
    this.failing = false;
    return true;
  }

  /** Seals the entries appended since the last seal (none: nothing happens). */
  seal(reason: Seal['reason']): Seal | undefined {
    if (this.batchCount === 0 || this.fd < 0) return undefined;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (!this.flush()) { this.armTimer(); return undefined; }
    try { fsyncSync(this.fd); } catch (e) { this.opts.onError?.(`cannot fsync the log in ${this.dir}: ${(e as Error).message}`); this.armTimer(); return undefined; }
    const s = this.state;
    const root = s.range.root();
    const lastSeq = s.nextSeq - 1;
    const checkpoint = checkpointOf(s.checkpoint, root, s.range.size, lastSeq);
    const seal: Seal = {
      batch: s.batch + 1, firstSeq: this.batchFirstSeq, lastSeq, treeSize: s.range.size, root: root.toString('hex'), prev: s.checkpoint.toString('hex'),
      checkpoint: checkpoint.toString('hex'), head: s.head.toString('hex'), range: s.range.state().map((h) => h.toString('hex')), time: new Date().toISOString(), reason,
    };
    if (!this.writeAll(Buffer.from(sealLine(seal)), true)) { this.armTimer(); return undefined; }
    s.batch = seal.batch;
    s.checkpoint = checkpoint;
    this.batchCount = 0;
    if (this.size >= this.segmentBytes) {
      closeSync(this.fd);
      this.openSegment(s.segment + 1);
    }
    this.opts.onSeal?.(seal);
    return seal;
  }

  /** Seals what is left and closes the segment. */
  close(): Seal | undefined {
    if (this.closed) return undefined;
    const seal = this.seal('stop');
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; }
    return seal;
  }
}
