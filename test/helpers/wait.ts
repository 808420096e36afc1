// Waiting for a condition instead of a fixed time: tests poll what they need, with a
// generous bound, so a busy machine makes them slower, never wrong.

/** Polls get() until it returns something other than undefined, null or false, and returns that; throws after timeoutMs. */
export async function until<T>(what: string, get: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
