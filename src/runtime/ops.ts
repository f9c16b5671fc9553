import { BatchNormalization, LayerNormalization } from './kernels/norm.js';
import { AveragePool, Conv, GlobalAveragePool, MaxPool } from './kernels/conv.js';
import { BINARY, Pow, UNARY } from './kernels/elementwise.js';
import { Gemm, MatMul } from './kernels/matmul.js';
import { SHAPE_KERNELS } from './kernels/shape.js';
import { LogSoftmax, Softmax } from './kernels/softmax.js';
import type { KernelFactory } from './kernel.js';

/**
 * The one table of ops the runtime executes (ONNX names, default domain). It answers "is this op
 * supported" for the executor, `inspect`, `validate` and the docs.
 */
export const OPS: Readonly<Record<string, KernelFactory>> = {
  ...BINARY,
  ...UNARY,
  ...SHAPE_KERNELS,
  Pow,
  MatMul,
  Gemm,
  Softmax,
  LogSoftmax,
  Conv,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  BatchNormalization,
  LayerNormalization,
};

export function supportedOps(): string[] {
  return Object.keys(OPS).sort();
}

export function isSupported(op: string, domain = ''): boolean {
  return (domain === '' || domain === 'ai.onnx') && Object.prototype.hasOwnProperty.call(OPS, op);
}
