/** A page cannot ask for a garbage collection: the browser build's collectGarbage does nothing (see gc-node.ts). */
export function collectGarbage(): void {}
