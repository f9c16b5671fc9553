/**
 * The loop a `serve --workers N` worker thread runs (see pool.ts): load and unload versions, run
 * requests, answer with the outputs' bytes transferred back. Input problems the runtime finds (a
 * shape the graph cannot take) come back as 'usage' errors, answered 400 by the server.
 */
import { parentPort } from 'node:worker_threads';
import { loadModel } from '../api/load.js';
import { Runner } from '../api/run.js';
import { FormatError, UsageError } from '../core/errors.js';
import type { Model } from '../core/model.js';
import { DEFAULT_SIGNATURE } from './versions.js';
import { fromWire, toWire, type WireTensor, type WorkerReply, type WorkerRequest } from './pool.js';

interface Held {
  readonly model: Model;
  readonly runners: Map<string, Runner>;
}

function runnerFor(held: Held, signature: string): Runner {
  let r = held.runners.get(signature);
  if (r) return r;
  // The same naming as LoadedVersion.signatures(): a lone unnamed signature is serving_default.
  const list = held.model.signatures;
  const named = list.find((s) => s.name === signature) ?? (signature === DEFAULT_SIGNATURE && !list.some((s) => s.name === DEFAULT_SIGNATURE) ? list[0] : undefined);
  if (!named) throw new UsageError(`Serving signature name: "${signature}" not found in signature def`);
  r = new Runner(held.model, named.name);
  held.runners.set(signature, r);
  return r;
}

export function serveWorker(): void {
  const port = parentPort;
  if (!port) return;
  const held = new Map<string, Held>();
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'unload') {
      held.delete(request.key);
      return;
    }
    try {
      if (request.type === 'load') {
        const model = loadModel(request.path);
        const h: Held = { model, runners: new Map() };
        runnerFor(h, DEFAULT_SIGNATURE);
        held.set(request.key, h);
        port.postMessage({ id: request.id, loaded: true } satisfies WorkerReply);
        return;
      }
      const h = held.get(request.key);
      if (!h) throw new Error(`version ${request.key} is not loaded in this worker`);
      const outputs = runnerFor(h, request.signature).run(Object.fromEntries(request.inputs.map(([name, w]) => [name, fromWire(w)])));
      const transfer: ArrayBuffer[] = [];
      const wire: Array<readonly [string, WireTensor]> = Object.entries(outputs).map(([name, t]) => {
        const w = toWire(t);
        transfer.push(...w.transfer);
        return [name, w.wire] as const;
      });
      port.postMessage({ id: request.id, outputs: wire } satisfies WorkerReply, transfer);
    } catch (error) {
      const usage = error instanceof UsageError || error instanceof FormatError || error instanceof RangeError;
      const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      port.postMessage({ id: request.id, error: { kind: usage ? 'usage' : 'internal', message } } satisfies WorkerReply);
    }
  });
}
