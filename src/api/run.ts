import { UsageError } from '../core/errors.js';
import { unloweredProblem } from '../formats/torchscript/reader.js';
import type { Graph } from '../core/graph.js';
import type { Model, Signature } from '../core/model.js';
import { formatShape } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { Session, type SessionOptions } from '../runtime/executor.js';

export type RunOptions = SessionOptions;

/** Picks a signature by name (the first when no name is given). */
export function selectSignature(model: Model, name?: string): Signature {
  if (!model.graph) {
    // A TorchScript archive whose code could not be lowered: its reason, not "no architecture".
    const problem = unloweredProblem(model.metadata);
    if (problem) throw problem;
    throw new UsageError(`the model is a bare state dict with no architecture: give --module SPEC.json to run it`);
  }
  const signature = name === undefined ? model.signatures[0] : model.signatures.find((s) => s.name === name);
  if (!signature) throw new UsageError(`no signature ${JSON.stringify(name)} (have: ${model.signatures.map((s) => s.name).join(', ') || 'none'})`);
  return signature;
}

function checkInput(graph: Graph, graphName: string, key: string, tensor: Tensor): void {
  const info = graph.inputs.find((i) => i.name === graphName);
  if (!info) return;
  if (info.dtype !== tensor.dtype) throw new UsageError(`input ${key} must be ${info.dtype}, got ${tensor.dtype}`);
  const shape = info.shape;
  if (shape && (shape.length !== tensor.shape.length || shape.some((d, i) => typeof d === 'number' && d !== tensor.shape[i]))) {
    throw new UsageError(`input ${key} must have shape [${shape.map((d) => d ?? '?').join(', ')}], got ${formatShape(tensor.shape)}`);
  }
}

/**
 * A model made ready to run: the graph is planned once, then `run` may be called many times.
 * Inputs and outputs are keyed by the signature's names.
 */
export class Runner {
  private readonly session: Session;
  readonly signature: Signature;

  constructor(
    readonly model: Model,
    signatureName?: string,
    options: RunOptions = {},
  ) {
    this.signature = selectSignature(model, signatureName);
    this.session = new Session(model.graph!, options);
  }

  get inputNames(): string[] {
    return [...this.signature.inputs.keys()];
  }

  run(inputs: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
    const graph = this.model.graph!;
    const feeds: Record<string, Tensor> = {};
    for (const [key, graphName] of this.signature.inputs) {
      const tensor = inputs[key];
      if (!tensor) throw new UsageError(`missing input ${key} (inputs: ${this.inputNames.join(', ')})`);
      checkInput(graph, graphName, key, tensor);
      feeds[graphName] = tensor;
    }
    const unknown = Object.keys(inputs).filter((k) => !this.signature.inputs.has(k));
    if (unknown.length) throw new UsageError(`unknown input ${unknown[0]} (inputs: ${this.inputNames.join(', ')})`);
    const results = this.session.run(feeds);
    const outputs: Record<string, Tensor> = {};
    for (const [key, graphName] of this.signature.outputs) outputs[key] = results[graphName]!;
    return outputs;
  }
}

export function runModel(model: Model, inputs: Readonly<Record<string, Tensor>>, signatureName?: string, options: RunOptions = {}): Record<string, Tensor> {
  return new Runner(model, signatureName, options).run(inputs);
}
