// Bundles the CLI and the library with esbuild, one file each, so the CLI starts fast.
// `--types` also builds the type declarations (dist/index.d.ts, .d.cts): npm pack runs it
// (prepack); tests and `npm ci` need only the bundles. `--docs` also writes the API reference
// (docs/api, committed: `npm run docs:api`).
import { build } from 'esbuild';
import { browserDistOptions } from './browser-build.mjs';
import { lazyImports } from './lazy-imports.mjs';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const withDocs = process.argv.includes('--docs');
const withTypes = withDocs || process.argv.includes('--types');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Source maps are 5 MB nobody installing the package asked for: only on request.
  sourcemap: process.env.MODELBRIDGE_SOURCEMAP === '1' ? 'linked' : false,
  minify: true,
  logLevel: 'warning',
  // onnxruntime-node and the tfjs packages are test/bench peers, never part of the product.
  external: ['onnxruntime-node', '@tensorflow/*'],
  // src/version.ts: the package's own version, wherever it is installed.
  define: { __MODELBRIDGE_VERSION__: JSON.stringify(version) },
};
for (const stale of ['dist/index.js.map', 'dist/index.cjs.map', 'dist/cli.cjs.map', 'dist/cli.js', 'dist/cli.js.map']) rmSync(stale, { force: true });

// The library as an ES module (the exports map's "import")...
await build({
  ...common,
  format: 'esm',
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
// ... and as CommonJS ("require"), so require('modelbridge') works on every Node 20, including
// those before require(esm). CommonJS has no import.meta: its url (createRequire's base, for the
// optional native CRC-32C) is the bundle's own file URL, as in the CLI. Made on first use: the
// URL machinery it loads is a few milliseconds of every CLI start, and few runs need it.
const cjsUrl = {
  define: { ...common.define, 'import.meta.url': '__modelbridge_meta.url' },
  banner: { js: "var __modelbridge_href, __modelbridge_meta = { get url() { return (__modelbridge_href ??= require('node:url').pathToFileURL(__filename).href); } };" },
};
await build({
  ...common,
  ...cjsUrl,
  format: 'cjs',
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.cjs',
});

// h5wasm (the HDF5 library in WebAssembly, for Keras files) as one ES module beside the bundles
// (its ES build, whose files live in memory; the node build's go to the real file system):
// src/formats/keras/h5-node.ts loads it on a worker thread from dist/h5wasm.mjs, so the installed
// package needs no node_modules; the browser build imports the same file (h5-web.ts). Kept out of the bundles themselves: 5 MB that only Keras
// files need, never parsed by a CLI start.
await build({
  ...common,
  format: 'esm',
  entryPoints: ['node_modules/h5wasm/dist/esm/hdf5_hl.js'],
  outfile: 'dist/h5wasm.mjs',
});

// The browser build (the exports map's "browser" condition): the library over bytes, no node: module
// in its graph (see scripts/browser-build.mjs), one ES module, and h5wasm from dist/h5wasm.mjs
// when a Keras file comes.
await build({ ...browserDistOptions, entryPoints: ['src/browser.ts'], outfile: 'dist/browser.js' });

// yargs' Node platform shim computes its paths from import.meta.url when it loads, which costs
// the URL machinery at every start (see cjsUrl), and, its bundle path holding no node_modules,
// takes the working directory as the application's folder: yargs then searches upwards from
// there for a package.json (reading each directory on the way, up to the root when there is
// none) only to guess a version that .version(VERSION) replaces. In the CLI bundle it takes its
// paths from __filename (the same values) and starts that search beside the bundle (dist/, then
// the package's folder, where it ends).
const YARGS_PLATFORM = [
  ['const __dirname = fileURLToPath(import.meta.url);', 'const __dirname = __filename;'],
  ["const mainFilename = __dirname.substring(0, __dirname.lastIndexOf('node_modules'));", 'const mainFilename = __dirname;'],
  ['const require = createRequire(import.meta.url);', 'const require = createRequire(__filename);'],
];
const yargsPlatform = {
  name: 'yargs-platform',
  setup: (b) =>
    b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      for (const [from, to] of YARGS_PLATFORM) {
        if (!text.includes(from)) throw new Error(`${args.path} changed: update YARGS_PLATFORM in scripts/build.mjs (no ${from})`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: 'js' };
    }),
};

// The CLI: CommonJS, because bin/modelbridge.cjs compiles it through node:vm with a V8 code cache
// (Node 20 has no compile cache for ES modules), which takes a third off every start. The
// string-width package (yargs' help layout) and assert (two checks in yargs) are swapped for
// lazy shims: see the shims.
//
// fastify and its dependencies (a third of the bundle) serve only `modelbridge serve`: they go to
// their own file, dist/fastify.cjs, required when a server starts, so every other command's
// start reads and compiles a third less code.
//
// Imports marked `// lazy in the CLI bundle` load on first use (scripts/lazy-imports.mjs), so a
// command initialises only the modules it runs: inspect of a safetensors file never builds the
// protobuf schemas, the runtime or the other formats' readers.
await build({
  ...common,
  format: 'cjs',
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli.cjs',
  alias: { 'string-width': './scripts/shims/string-width.mjs', assert: './scripts/shims/assert.mjs' },
  plugins: [{ name: 'fastify-apart', setup: (b) => b.onResolve({ filter: /^fastify$/ }, () => ({ path: './fastify.cjs', external: true })) }, lazyImports, yargsPlatform],
  ...cjsUrl,
});
await build({ ...common, format: 'cjs', stdin: { contents: "module.exports = require('fastify');", resolveDir: '.', loader: 'js' }, outfile: 'dist/fastify.cjs' });

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
const step = (cmd, args) => {
  const r = spawnSync(bin(cmd), args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
};
if (withTypes) {
  // Declarations per file (dist/.types), rolled into one self-contained dist/index.d.ts by
  // API Extractor: no imports of the source tree, of Node's types or of dependencies.
  rmSync('dist/.types', { recursive: true, force: true });
  step('tsc', ['-p', 'tsconfig.types.json']);
  step('api-extractor', ['run', '--local']);
  // The same declarations for require(): a .d.cts so TypeScript treats them as CommonJS.
  copyFileSync('dist/index.d.ts', 'dist/index.d.cts');
}
if (withDocs) {
  // The API reference from the TSDoc, in markdown, beside the other docs.
  rmSync('docs/api', { recursive: true, force: true });
  step('api-documenter', ['markdown', '--input-folder', 'dist/.api', '--output-folder', 'docs/api']);
}

// Warm the code cache once (the bin writes dist/cli.cjs.cache after a run that compiled the code).
// --tensors keeps the run off the `inspect MODEL --json` shortcut (src/cli/commands/inspect.ts),
// so yargs' code is cached too: every other command needs it, and the shortcut loses nothing
// measurable by its being there.
rmSync('dist/cli.cjs.cache', { force: true });
spawnSync(process.execPath, ['bin/modelbridge.cjs', 'inspect', 'samples/or-gate/or-gate.safetensors', '--json', '--tensors'], { stdio: 'ignore' });
