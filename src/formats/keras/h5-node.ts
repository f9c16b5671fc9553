import { existsSync } from '../../core/vfs.js';
import { h5Ops } from './h5-ops.js';
import { h5ReadError, type H5Group, type H5WriteGroup } from './h5-types.js';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/**
 * HDF5 through h5wasm in Node (h5.ts says why h5wasm; the browser build swaps this file for
 * h5-web.ts, which runs it on the calling thread).
 *
 * h5wasm only starts asynchronously (its WebAssembly instantiates behind a promise), while every
 * reader and writer of this project is synchronous. So it runs on a worker thread, and this
 * thread blocks on an Atomics word until the worker has answered through a MessagePort, whose
 * message is then taken with receiveMessageOnPort: a synchronous call, without an event loop.
 * The worker starts on first use, is kept for later calls and never keeps the process alive.
 *
 * The worker loads h5wasm from dist/h5wasm.mjs beside the bundle (scripts/build.mjs bundles it
 * there, so the installed package needs no node_modules), or from node_modules when running from
 * the sources (tests).
 */

/** The bridge gives up on a worker that has not answered in this long (a bug, not a bad file). */
const TIMEOUT_MS = 10 * 60_000;

const workerSource = (moduleUrl: string): string => `
const { workerData } = require('node:worker_threads');
// HDF5 prints its error stack through the WebAssembly runtime's console; a bad file is reported
// in one line by the reader instead, so the worker's console stays silent. (h5wasm's ES build:
// its files are in memory, where the node build would write them to the real file system.)
console.log = console.info = console.warn = console.error = () => {};
const flag = new Int32Array(workerData.flag);
const port = workerData.port;
const loaded = import(${JSON.stringify(moduleUrl)}).then(async (h5) => { await h5.ready; return h5; });
const reply = (message, transfer) => {
  port.postMessage(message, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};
const ops = loaded.then((h5) => (${h5Ops.toString()})(h5));
port.on('message', (request) => {
  ops.then((o) => {
    try {
      if (request.op === 'read') {
        // The weights move to the caller's thread rather than being copied once more.
        const { root, buffers } = o.read(request.bytes, request.limit);
        reply({ ok: true, root }, buffers);
      } else {
        const bytes = o.write(request.root);
        reply({ ok: true, bytes }, [bytes.buffer]);
      }
    } catch (error) {
      reply({ ok: false, message: String(error && error.message ? error.message : error) });
    }
  }, (error) => reply({ ok: false, message: 'h5wasm did not load: ' + String(error && error.message ? error.message : error) }));
});
`;

/** Where h5wasm's ES module is: bundled beside dist/, else the installed package (sources, tests). */
function h5wasmUrl(): string {
  const here = fileURLToPath(import.meta.url);
  const bundled = join(dirname(here), 'h5wasm.mjs');
  if (existsSync(bundled)) return pathToFileURL(bundled).href;
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths('h5wasm') ?? []) {
    const candidate = join(dir, 'h5wasm', 'dist', 'esm', 'hdf5_hl.js');
    if (existsSync(candidate)) return pathToFileURL(candidate).href;
  }
  throw new Error('h5wasm is missing: neither dist/h5wasm.mjs nor node_modules/h5wasm was found');
}

interface Bridge {
  readonly port: MessagePort;
  readonly flag: Int32Array;
}

let bridge: Bridge | undefined;

function start(): Bridge {
  if (bridge) return bridge;
  // The channel first: where there are no worker threads (the browser build) it refuses in one line.
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerSource(h5wasmUrl()), { eval: true, workerData: { flag: flag.buffer, port: port2 }, transferList: [port2] });
  // An idle worker waits on its port; it must never keep the process alive.
  worker.unref();
  port1.unref();
  bridge = { port: port1, flag };
  return bridge;
}

type Reply = { ok: true; root?: H5Group; bytes?: Uint8Array } | { ok: false; message: string };

function call(request: object, transfer: ArrayBuffer[] = []): Reply {
  const b = start();
  Atomics.store(b.flag, 0, 0);
  b.port.postMessage(request, transfer);
  if (Atomics.wait(b.flag, 0, 0, TIMEOUT_MS) === 'timed-out') throw new Error('the HDF5 worker thread did not answer');
  const got = receiveMessageOnPort(b.port);
  if (!got) throw new Error('the HDF5 worker thread answered without a message');
  return got.message as Reply;
}

/**
 * The whole tree of an HDF5 file held in memory: groups, attributes and every dataset's bytes.
 * `limit` bounds the datasets' total bytes (a compressed dataset can declare any size).
 */
export function readH5(bytes: Uint8Array, limit: number): H5Group {
  const reply = call({ op: 'read', bytes, limit });
  if (!reply.ok) throw h5ReadError(reply.message);
  return reply.root!;
}

/** The bytes of a new HDF5 file laid out as `root` says (the library's default file layout). */
export function writeH5(root: H5WriteGroup): Uint8Array {
  const reply = call({ op: 'write', root });
  if (!reply.ok) throw new Error(`HDF5 writing failed: ${reply.message}`);
  return reply.bytes!;
}

/** Nothing to wait for in Node: the worker thread's bridge is synchronous (the browser build's h5-web.ts loads h5wasm here). */
export async function loadHdf5(): Promise<void> {}
