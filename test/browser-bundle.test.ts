import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
// @ts-expect-error: a plain ES module of build options, no declarations
import { browserDistOptions } from '../scripts/browser-build.mjs';

/**
 * The browser bundle (package.json's "browser" condition, dist/browser.js): its module graph, as
 * esbuild's metafile records it, holds no node: module and no external import; a bundler that
 * resolves it needs no configuration.
 */
describe('browser bundle', () => {
  it('imports no node: module and nothing external', async () => {
    const result = await build({ ...(browserDistOptions as object), entryPoints: ['src/browser.ts'], write: false, outdir: 'dist-test-browser', metafile: true });
    const inputs = result.metafile!.inputs;
    const paths = Object.keys(inputs);
    expect(paths.length).toBeGreaterThan(100);
    expect(paths.filter((p) => p.startsWith('node:') || p.includes('vfs-node'))).toEqual([]);
    const imports = Object.entries(inputs).flatMap(([from, i]) => i.imports.map((imp) => ({ from, ...imp })));
    // esbuild lists as "external" the injected `process` shim at each use (it is bundled) and a
    // TypeScript import it elided (used as a type only, a relative path); nothing else may be.
    expect(imports.filter((i) => i.path.startsWith('node:') || (i.external && !i.path.endsWith('src/browser/shims/process.ts') && !i.path.startsWith('.')))).toEqual([]);
    // h5wasm (HDF5, for Keras files) is no part of it: imported when a Keras file comes, from dist/h5wasm.mjs beside it.
    expect(imports.filter((i) => i.path === './h5wasm.mjs').map((i) => [i.kind, i.external])).toEqual([['dynamic-import', true]]);
    expect(paths.some((p) => p.includes('h5wasm'))).toBe(false);
    expect(paths).toContain('src/formats/keras/h5-web.ts');
    // The stand-ins are what the graph has instead.
    expect(paths).toContain('src/core/vfs-none.ts');
    expect(paths).toContain('src/browser/shims/path.ts');
    const js = result.outputFiles!.find((f) => f.path.endsWith('.js'))!;
    // No static import of a Node module in the output (the worker threads' source text, kept as a
    // string for Node, names node:worker_threads but never runs here).
    expect(/\bimport\s*[{*\w][^;"'`]*from\s*["']node:/.test(js.text)).toBe(false);
    // The README states this size; a bundle grown by half again means the README is stale.
    expect(gzipSync(js.contents).byteLength).toBeLessThan(450_000);
  });
});
