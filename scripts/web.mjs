// `npm run web`: the static web page (web/) into dist/web: index.html, style.css and app.js (the
// page's code with the browser bundle in it), h5wasm's file (HDF5, loaded with the first Keras
// file) and a small chunk the two share (esbuild's helpers). Serve the folder with any static
// server; nothing else is fetched. Cross-origin isolation (COOP/COEP headers) lets the WebAssembly GEMM kernel
// run (its memory is shared); without it products run in JavaScript. `npx tsc -p web` type-checks
// the page against the DOM.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { browserOptions } from './browser-build.mjs';

const out = process.argv[2] ?? 'dist/web';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// h5wasm (Keras files) goes to a file of its own, loaded with the first Keras file.
await build({ ...browserOptions, entryPoints: ['web/app.ts'], outdir: out, splitting: true, entryNames: '[name]', chunkNames: '[name]-[hash]', tsconfig: 'web/tsconfig.json' });
for (const f of ['index.html', 'style.css']) copyFileSync(`web/${f}`, `${out}/${f}`);
console.log(`web page in ${out}/ (open index.html through a static server)`);
