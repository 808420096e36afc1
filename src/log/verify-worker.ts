// A worker thread of verifyLogDirParallel: checks whole segments, each from the seal it
// is given (or the log's start), and answers with where the chain stands at its end.
import { basename } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { LogVerifyError, emptyTally, genesisPosition, positionAfterSeal, readSegment, verifySegmentBytes } from './verify.js';
import { positionData, type SegmentResult, type SegmentTask } from './verify-parallel.js';

const port = parentPort;
if (!port) throw new Error('verify-worker.js runs as a worker thread of verifyLogDirParallel');
port.on('message', (task: SegmentTask) => {
  let result: SegmentResult;
  try {
    const pos = task.from ? positionAfterSeal(task.from) : genesisPosition();
    const tally = emptyTally();
    verifySegmentBytes(readSegment(task.path), basename(task.path), task.last, pos, tally, { agentRecords: task.agentRecords, native: task.native });
    result = { id: task.id, ok: true, end: positionData(pos), tally };
  } catch (e) {
    // The thread that asked checks this segment again itself, and reports.
    result = { id: task.id, ok: false, check: e instanceof LogVerifyError ? e.check : undefined, message: (e as Error).message };
  }
  port.postMessage(result);
});
