/**
 * The module spec: a model's architecture as JSON that mirrors torch.nn. `type` is a torch.nn
 * class name and the other fields are that class's constructor arguments, so Python can rebuild
 * the module with `getattr(torch.nn, type)(**fields)`. Containers list their children in
 * `modules`; a child's optional `name` is its attribute name (state-dict prefix), else its index.
 *
 * Models that are no stack of modules use the general form `{"type": "Graph", ...}` (see
 * graph-spec.ts), whose nodes are the IR's ONNX ops over state-dict tensors.
 */
export interface ModuleSpec {
  readonly type: string;
  readonly name?: string;
  readonly modules?: readonly ModuleSpec[];
  readonly [field: string]: unknown;
}

/** Where a model's graph inputs come from when lowering: stored beside the spec. */
export interface IOSpec {
  readonly name: string;
  readonly dtype: string;
  /** -1 (or null) for a dimension of any size, such as the batch. */
  readonly shape: readonly (number | null)[];
}

export interface SignatureSpec {
  readonly inputs: readonly IOSpec[];
  readonly outputs: readonly IOSpec[];
}

/** Metadata keys a modelbridge bundle uses (safetensors `__metadata__`, .pt extra record, ...). */
export const MODULE_KEY = 'modelbridge.module';
export const SIGNATURE_KEY = 'modelbridge.signature';
