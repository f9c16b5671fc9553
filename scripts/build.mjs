// Bundles the CLI and the library with esbuild, one file each, so the CLI starts fast.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  minify: true,
  logLevel: 'warning',
  // onnxruntime-node and the tfjs packages are test/bench peers, never part of the product.
  external: ['onnxruntime-node', '@tensorflow/*'],
};

// The library: ESM, as the package exports it.
await build({
  ...common,
  format: 'esm',
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});

// The CLI: CommonJS, because bin/modelbridge.cjs compiles it through node:vm with a V8 code cache
// (Node 20 has no compile cache for ES modules), which takes a third off every start. The
// string-width package (yargs' help layout) is swapped for a lazy shim: see the shim.
await build({
  ...common,
  format: 'cjs',
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli.cjs',
  alias: { 'string-width': './scripts/shims/string-width.mjs' },
  define: { 'import.meta.url': '__modelbridge_url' },
  banner: { js: "var __modelbridge_url = require('node:url').pathToFileURL(__filename).href;" },
});
rmSync('dist/cli.js', { force: true });
rmSync('dist/cli.js.map', { force: true });

// Warm the code cache once (the bin writes dist/cli.cjs.cache after a run that compiled the code).
rmSync('dist/cli.cjs.cache', { force: true });
spawnSync(process.execPath, ['bin/modelbridge.cjs', 'inspect', 'samples/or-gate/or-gate.safetensors', '--json'], { stdio: 'ignore' });
