// The browser bundle's esbuild options, shared by scripts/build.mjs (dist/browser.js), the web
// page's build (scripts/web.mjs) and the test that checks its module graph (test/browser-bundle.test.ts).
// Node's file system is swapped for nothing (src/core/vfs-none.ts: models come as bytes on
// in-memory volumes), worker threads for Web Workers (src/core/threads-web.ts) and the few other Node modules for the shims in src/browser/shims; so the
// bundle's graph has no node: module, and nothing needs bundler configuration downstream.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const SHIMS = ['path', 'zlib', 'worker_threads', 'os', 'v8', 'module', 'url'];

export const browserShims = {
  name: 'modelbridge-browser-shims',
  setup(build) {
    build.onResolve({ filter: /\/vfs-node\.js$/ }, () => ({ path: `${root}src/core/vfs-none.ts` }));
    // Threads: Web Workers from a Blob URL where Node starts worker threads (src/core/threads-web.ts).
    build.onResolve({ filter: /\/threads-node\.js$/ }, () => ({ path: `${root}src/core/threads-web.ts` }));
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
