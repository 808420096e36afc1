// A worker thread of verifyLogDirParallel: takes segments from the shared counter until
// none is left, checks each from the seal it starts after (or the log's start), and
// answers with where the chain stands at its end, or what failed there.
import { parentPort, workerData } from 'node:worker_threads';
import { checkTask, type WorkerJob } from './verify-parallel.js';

const port = parentPort;
if (!port) throw new Error('verify-worker.js runs as a worker thread of verifyLogDirParallel');
const { tasks, counter } = workerData as WorkerJob;
for (let i = Atomics.add(counter, 0, 1); i < tasks.length; i = Atomics.add(counter, 0, 1)) port.postMessage(checkTask(tasks[i] as (typeof tasks)[number]));
port.postMessage('done');
