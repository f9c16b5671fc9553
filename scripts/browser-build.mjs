// The browser bundle's esbuild options, shared by scripts/build.mjs (dist/browser.js), the web
// page's build (scripts/web.mjs) and the test that checks its module graph (test/browser-bundle.test.ts).
// Node's file system is swapped for nothing (src/core/vfs-none.ts: models come as bytes on
// in-memory volumes), worker threads for Web Workers (src/core/threads-web.ts), the HDF5 worker thread for h5wasm on
// the calling thread (src/formats/keras/h5-web.ts) and the few other Node modules for the shims in src/browser/shims; so the
// bundle's graph has no node: module, and nothing needs bundler configuration downstream.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// node:worker_threads has none on purpose: threads go through src/core/threads.ts (Web Workers here).
const SHIMS = ['path', 'zlib', 'os', 'v8', 'module'];

export const browserShims = {
  name: 'modelbridge-browser-shims',
  setup(build) {
    build.onResolve({ filter: /\/vfs-node\.js$/ }, () => ({ path: `${root}src/core/vfs-none.ts` }));
    // Threads: Web Workers from a Blob URL where Node starts worker threads (src/core/threads-web.ts).
    build.onResolve({ filter: /\/threads-node\.js$/ }, () => ({ path: `${root}src/core/threads-web.ts` }));
    // HDF5 (Keras files): h5wasm on the calling thread, loaded ahead by readModel (src/formats/keras/h5-web.ts).
    build.onResolve({ filter: /\/h5-node\.js$/ }, () => ({ path: `${root}src/formats/keras/h5-web.ts` }));
    // A page cannot ask for a garbage collection (src/core/gc-web.ts).
    build.onResolve({ filter: /\/gc-node\.js$/ }, () => ({ path: `${root}src/core/gc-web.ts` }));
    build.onResolve({ filter: /^node:/ }, (args) => {
      const name = args.path.slice('node:'.length);
      if (SHIMS.includes(name)) return { path: `${root}src/browser/shims/${name}.ts` };
      return { errors: [{ text: `${args.path} (from ${args.importer}) has no browser shim` }] };
    });
  },
};

export const browserOptions = {
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16.4'],
  minify: true,
  logLevel: 'warning',
  plugins: [browserShims],
  inject: [`${root}src/browser/shims/process.ts`],
  define: { __MODELBRIDGE_VERSION__: JSON.stringify(version) },
};

/**
 * dist/browser.js: h5wasm (4 MB, for Keras files only) is left out and imported, dynamically with
 * the first Keras file, from dist/h5wasm.mjs beside it, the ES module scripts/build.mjs makes for
 * Node too (it has no Node import), so the package carries it once. Bundlers downstream follow
 * the relative import as any other. The page (scripts/web.mjs) splits it into a file of its own.
 */
const h5wasmBeside = {
  name: 'modelbridge-h5wasm-beside',
  setup(build) {
    build.onResolve({ filter: /^h5wasm$/ }, () => ({ path: './h5wasm.mjs', external: true }));
  },
};

export const browserDistOptions = { ...browserOptions, plugins: [h5wasmBeside, browserShims] };
