// Runs image analyses for the agent off its event loop (src/analysis is seconds of CPU on a
// cold image). One request at a time, answered in order; a failure is an answer too.
import { parentPort } from 'node:worker_threads';
import { analyzeImage, type UnresolvedMode } from '../analysis/index.js';

export interface AnalysisRequest {
  id: number;
  image: string;
  unresolved: UnresolvedMode;
  cacheDir: string;
  allElf: boolean;
  dockerSocket: string;
}

export type AnalysisAnswer =
  | { id: number; ok: true; imageId: string; numbers: number[]; allowAll: boolean; unresolved: number; cached: boolean }
  | { id: number; ok: false; error: string };

const port = parentPort;
if (port) {
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (req: AnalysisRequest) => {
    chain = chain.then(async () => {
      try {
        const r = await analyzeImage(req.image, {
          unresolved: req.unresolved, allElf: req.allElf, dockerSocket: req.dockerSocket, ...(req.cacheDir ? { cacheDir: req.cacheDir } : {}),
        });
        const answer: AnalysisAnswer = {
          id: req.id, ok: true, imageId: r.image.id, numbers: r.numbers, allowAll: r.allowAll, unresolved: r.unresolved.length, cached: r.stats.imageCached,
        };
        port.postMessage(answer);
      } catch (e) {
        port.postMessage({ id: req.id, ok: false, error: (e as Error).message } satisfies AnalysisAnswer);
      }
    });
  });
}
