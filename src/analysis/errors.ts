// Errors of the image analysis. Each names the input it is about (an archive, a layer, a file
// inside the image) so a person can find what is wrong without re-running anything.
export class AnalysisError extends Error {
  readonly code = 'VIGIL_ANALYSIS';
  /** The file the error is about: a path on the host, or `LAYER:/path` inside an image. */
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'AnalysisError';
    this.file = file;
  }
}

/** A problem that did not stop the analysis: a skipped entry, an unreadable library, ... */
export interface AnalysisWarning {
  file: string;
  message: string;
}
