/**
 * Runs ONNX backend node tests inside the browser, on the browser bundle's code (built with
 * scripts/browser-build.mjs by test/browser.conformance.test.ts): each case's files are fetched
 * from the test's loopback server (one zip), read from their bytes, run and compared as
 * test/onnx-conformance.test.ts does in Node.
 */
import { unzipSync } from 'fflate';
import { allNodes, type Graph } from '../../src/core/graph.js';
import type { Tensor } from '../../src/core/tensor.js';
import { conformanceMismatch } from '../../src/formats/onnx/conformance.js';
import { readOnnxModel, readOnnxTensor } from '../../src/formats/onnx/index.js';
import { Session } from '../../src/runtime/executor.js';
import { isSupported } from '../../src/runtime/ops.js';
import { isComputable } from '../../src/runtime/value.js';
import { gemmKernel } from '../../src/runtime/wasm/gemm.js';

export interface CaseFiles {
  readonly name: string;
  /** Each test_data_set's folder name and the .pb files in it. */
  readonly sets: ReadonlyArray<{ readonly name: string; readonly files: readonly string[] }>;
}

export interface CaseResult {
  readonly name: string;
  readonly status: 'pass' | 'fail' | 'unreadable' | 'unsupported';
  readonly message: string;
}

interface Loaded {
  readonly model: Uint8Array;
  readonly sets: ReadonlyArray<{ readonly name: string; readonly files: ReadonlyMap<string, Uint8Array> }>;
}

function runCase(c: CaseFiles, loaded: Loaded): CaseResult {
  try {
    let graph: Graph;
    try {
      const g = readOnnxModel(loaded.model, `${c.name}/model.onnx`).graph;
      if (!g) return { name: c.name, status: 'unreadable', message: 'no graph' };
      graph = g;
    } catch (e) {
      return { name: c.name, status: 'unreadable', message: (e as Error).message };
    }
    if (allNodes(graph).some((n) => !isSupported(n.op, graph.opset, n.domain))) return { name: c.name, status: 'unsupported', message: 'op' };
    if ([...graph.inputs, ...graph.outputs].some((v) => !isComputable(v.dtype))) return { name: c.name, status: 'unsupported', message: 'dtype' };
    const session = new Session(graph);
    for (const { name: set, files } of loaded.sets) {
      const feeds: Record<string, Tensor> = {};
      graph.inputs.forEach((input, i) => {
        const bytes = files.get(`input_${i}.pb`);
        if (bytes) feeds[input.name] = readOnnxTensor(bytes, `input_${i}.pb`);
      });
      const outputs = session.run(feeds);
      for (const [i, output] of graph.outputs.entries()) {
        const problem = conformanceMismatch(outputs[output.name]!, readOnnxTensor(files.get(`output_${i}.pb`)!, `output_${i}.pb`));
        if (problem) return { name: c.name, status: 'fail', message: `${set}, output ${output.name}: ${problem}` };
      }
    }
    return { name: c.name, status: 'pass', message: '' };
  } catch (e) {
    return { name: c.name, status: 'fail', message: (e as Error).message };
  }
}

/** Every case's files come in one stored zip (thousands of small requests would take most of the run). */
async function runConformance(cases: readonly CaseFiles[]): Promise<{ kernel: string; results: CaseResult[] }> {
  const response = await fetch('/onnx.zip');
  const files = unzipSync(new Uint8Array(await response.arrayBuffer()));
  const file = (path: string): Uint8Array => {
    const bytes = files[path];
    if (!bytes) throw new Error(`${path} missing from onnx.zip`);
    return bytes;
  };
  const results = cases.map((c) =>
    runCase(c, {
      model: file(`${c.name}/model.onnx`),
      sets: c.sets.map((set) => ({ name: set.name, files: new Map(set.files.map((f) => [f, file(`${c.name}/${set.name}/${f}`)])) })),
    }),
  );
  return { kernel: gemmKernel(), results };
}

(globalThis as { runConformance?: typeof runConformance }).runConformance = runConformance;
(globalThis as { harnessReady?: boolean }).harnessReady = true;
