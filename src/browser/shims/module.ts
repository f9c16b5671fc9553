/** node:module for the browser bundle: no native addons (the optional CRC-32C binding is skipped; JavaScript computes it). */
export function createRequire(): ((id: string) => never) & { resolve: { paths: () => string[] } } {
  const require = (id: string): never => {
    throw new Error(`cannot load ${id} in the browser build`);
  };
  return Object.assign(require, { resolve: { paths: (): string[] => [] } });
}
