// Shell-style globs for selectors: `*` any run of characters (slashes included, so
// `registry.example/web/*` matches every image below it), `?` one character.
const compiled = new Map<string, RegExp>();

export function globMatch(glob: string, value: string): boolean {
  let re = compiled.get(glob);
  if (!re) {
    const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
    compiled.set(glob, re);
  }
  return re.test(value);
}
