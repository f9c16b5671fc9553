// `npm run web`: the static web page (web/) into dist/web: index.html, style.css and app.js (the
// page's code with the browser bundle in it), h5wasm's file (HDF5, loaded with the first Keras
// file) and a small chunk the two share (esbuild's helpers). Serve the folder with any static
// server; nothing else is fetched. Cross-origin isolation (COOP/COEP headers) lets the WebAssembly GEMM kernel
// run (its memory is shared); without it products run in JavaScript. `npx tsc -p web` type-checks
// the page against the DOM.
//
// `npm run web -- --serve` then serves it on http://127.0.0.1:8080/ (PORT overrides) with the
// headers that make a page cross-origin isolated, which a site must send for the WebAssembly
// kernel and its Web Worker threads:
//   Cross-Origin-Opener-Policy: same-origin
//   Cross-Origin-Embedder-Policy: require-corp
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { browserOptions } from './browser-build.mjs';

const args = process.argv.slice(2);
const serve = args.includes('--serve');
const out = args.find((a) => !a.startsWith('--')) ?? 'dist/web';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// h5wasm (Keras files) goes to a file of its own, loaded with the first Keras file.
await build({ ...browserOptions, entryPoints: ['web/app.ts'], outdir: out, splitting: true, entryNames: '[name]', chunkNames: '[name]-[hash]', tsconfig: 'web/tsconfig.json' });
for (const f of ['index.html', 'style.css']) copyFileSync(`web/${f}`, `${out}/${f}`);
console.log(`web page in ${out}/ (open index.html through a static server${serve ? '' : ', or npm run web -- --serve'})`);

if (serve) {
  const root = resolve(out);
  const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
  const isolated = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, isolated).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...isolated }).end(readFileSync(file));
  });
  const port = Number(process.env.PORT ?? 8080);
  server.listen(port, '127.0.0.1', () => console.log(`serving it on http://127.0.0.1:${port}/ (cross-origin isolated; Ctrl-C stops)`));
}
