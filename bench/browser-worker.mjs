// One in-browser conversion, in a fresh process (bench/formats.mjs runs it through GNU time):
//   node bench/browser-worker.mjs MODEL FORMAT
// Serves a bare page and dist/browser.js (the package's browser build) on 127.0.0.1, cross-origin
// isolated as the web page's server is (so the WebAssembly kernel may use shared memory), opens it
// in Debian's headless Chromium driven by playwright-core (as test/browser.page.test.ts does; no
// downloaded browser build), hands MODEL to the page through a file input and times, inside the
// page, what a user's conversion is: readModel(file) + convertModelBytes(model, FORMAT) (written,
// read back, every tensor compared, outputs compared on a generated input) + the output files
// gathered into a Blob, as a download would be. The page first starts its Web Worker threads as
// the web page does (one per core, at most 4; BENCH_BROWSER_THREADS overrides), outside the
// timing: products (the verification's run) are shared with them, checkpoint CRC-32Cs go to one.
// Prints one JSON line: seconds (and per phase), the threads,
// the verification summary, the output bytes, and the renderer's peak RSS (VmHWM of the Chromium
// renderer that ran the page, read from /proc before the browser closes).
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.MODELBRIDGE_CHROMIUM ?? '/usr/bin/chromium';
const [model, format] = process.argv.slice(2);
if (!model || !format) {
  console.error('usage: node bench/browser-worker.mjs MODEL FORMAT');
  process.exit(2);
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>modelbridge bench</title>
<input type="file" id="file">
<script type="module">import * as mb from './browser.js'; window.mb = mb; document.body.dataset.ready = '1';</script>`;
const BUNDLE = readFileSync(join(ROOT, 'dist', 'browser.js'));
// h5wasm, which dist/browser.js imports with the first Keras file.
const H5WASM = readFileSync(join(ROOT, 'dist', 'h5wasm.mjs'));

const server = createServer((req, res) => {
  const isolated = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  if (req.url === '/' || req.url === '/index.html') res.writeHead(200, { 'content-type': 'text/html', ...isolated }).end(PAGE);
  else if (req.url === '/browser.js') res.writeHead(200, { 'content-type': 'text/javascript', ...isolated }).end(BUNDLE);
  else if (req.url === '/h5wasm.mjs') res.writeHead(200, { 'content-type': 'text/javascript', ...isolated }).end(H5WASM);
  else res.writeHead(404).end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

/** Peak RSS (VmHWM, bytes) of every Chromium renderer below this process, read from /proc. */
function rendererPeaks() {
  const parent = new Map();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      // the command name may hold spaces and parentheses: the fields start after the last ')'
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const below = (pid) => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  const peaks = [];
  for (const pid of parent.keys()) {
    if (!below(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const kib = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      if (Number.isFinite(kib)) peaks.push(kib * 1024);
    } catch {
      // the process ended while we looked
    }
  }
  return peaks;
}

// A page that never answers (a renderer killed for memory, a hung evaluate) must not hang the
// bench: after this long the worker reports a failure and exits, and Chromium with it.
const LIMIT_SECONDS = Number(process.env.BENCH_BROWSER_TIMEOUT ?? 600);
setTimeout(() => {
  console.error(`the in-browser conversion did not finish in ${LIMIT_SECONDS} s`);
  process.exit(1);
}, LIMIT_SECONDS * 1000).unref();

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(`${origin}/index.html`);
  await page.waitForSelector('body[data-ready="1"]', { state: 'attached' });
  // A local browser gets the path itself (no copy through the driver's pipe).
  await page.setInputFiles('#file', model);
  const result = await page.evaluate(async ([name, to, wanted]) => {
    const file = document.querySelector('#file').files[0];
    const threads = await window.mb.startThreads(wanted > 0 ? wanted : Math.min(navigator.hardwareConcurrency || 1, 4));
    const t0 = performance.now();
    const read = await window.mb.readModel(file, { name });
    const t1 = performance.now();
    const converted = window.mb.convertModelBytes(read, to);
    const blob = new Blob([...converted.files.values()]);
    const t2 = performance.now();
    window.mb.releaseModel(read);
    return {
      seconds: (t2 - t0) / 1000,
      read: (t1 - t0) / 1000,
      write: converted.seconds.write,
      verify: converted.seconds.verify,
      bytes: blob.size,
      files: converted.files.size,
      verified: `verified: ${converted.verification.summary}`,
      isolated: globalThis.crossOriginIsolated,
      threads,
    };
  }, [basename(model), format, Number(process.env.BENCH_BROWSER_THREADS ?? 0)]);
  const peaks = rendererPeaks();
  console.log(JSON.stringify({ ...result, rendererRSS: Math.max(0, ...peaks), renderers: peaks.length }));
} finally {
  await browser.close();
  server.close();
}
