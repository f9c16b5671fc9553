import { attrFloat, attrInt } from '../../core/graph.js';
import type { NumericArray } from '../../core/tensor.js';
import { broadcastShapes, broadcastStrides } from '../broadcast.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isHalf, makeValue, roundHalf, sizeOfShape, type Value } from '../value.js';
import { matmulInto, type FloatArray } from './gemm-core.js';

function asFloat(v: Value, op: string): FloatArray {
  if (v.data instanceof Float32Array || v.data instanceof Float64Array) return v.data;
  return Float64Array.from(v.data as ArrayLike<number | bigint>, Number);
}

function writeBack(out: Value, data: FloatArray): void {
  const target = out.data as NumericArray;
  if (target === data) return;
  if (target instanceof BigInt64Array || target instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) target[i] = BigInt(Math.round(data[i]!));
  } else {
    (target as Float32Array).set(data);
  }
}

function transpose2d(src: FloatArray, rows: number, cols: number): FloatArray {
  const out = new (src.constructor as typeof Float64Array)(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/** numpy.matmul: stacks of matrices with broadcast batch axes; 1-D operands get a unit axis. */
export const MatMul: KernelFactory = {
  prepare: () => (inputs) => {
    const a = required(inputs, 0, 'MatMul');
    const b = required(inputs, 1, 'MatMul');
    if (a.dtype !== b.dtype) throw new KernelError(`MatMul: inputs are ${a.dtype} and ${b.dtype}`);
    const aShape = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
    const bShape = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
    const m = aShape[aShape.length - 2]!;
    const k = aShape[aShape.length - 1]!;
    const n = bShape[bShape.length - 1]!;
    if (bShape[bShape.length - 2] !== k) throw new KernelError(`MatMul: inner dimensions ${k} and ${bShape[bShape.length - 2]} differ`);
    const batch = broadcastShapes(aShape.slice(0, -2), bShape.slice(0, -2), 'MatMul');
    const outShape = [...batch, m, n];
    if (a.shape.length === 1) outShape.splice(outShape.length - 2, 1);
    if (b.shape.length === 1) outShape.splice(outShape.length - 1, 1);
    const out = makeValue(a.dtype, outShape);
    const af = asFloat(a, 'MatMul');
    const bf = asFloat(b, 'MatMul');
    const of = out.data instanceof Float32Array || out.data instanceof Float64Array ? out.data : new Float64Array(sizeOfShape(outShape));
    const batches = sizeOfShape(batch);
    const aStrides = broadcastStrides(aShape.slice(0, -2), batch);
    const bStrides = broadcastStrides(bShape.slice(0, -2), batch);
    for (let t = 0; t < batches; t++) {
      let rest = t;
      let ia = 0;
      let ib = 0;
      for (let axis = batch.length - 1; axis >= 0; axis--) {
        const idx = rest % batch[axis]!;
        rest = Math.floor(rest / batch[axis]!);
        ia += idx * aStrides[axis]!;
        ib += idx * bStrides[axis]!;
      }
      matmulInto(of, t * m * n, af, ia * m * k, bf, ib * k * n, m, n, k, false);
    }
    writeBack(out, of);
    if (isHalf(out.dtype)) roundHalf(out.dtype, out.data as Float32Array);
    return [out];
  },
};

/** Y = alpha · A' · B' + beta · C, with C broadcast to [M, N] (ONNX Gemm, opset 7 and later). */
export const Gemm: KernelFactory = {
  prepare(node) {
    const transA = attrInt(node, 'transA', 0) !== 0;
    const transB = attrInt(node, 'transB', 0) !== 0;
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    return (inputs) => {
      const a = required(inputs, 0, 'Gemm');
      const b = required(inputs, 1, 'Gemm');
      const c = inputs[2];
      if (a.shape.length !== 2 || b.shape.length !== 2) throw new KernelError('Gemm: A and B must be 2-D');
      const [ar, ac] = a.shape as [number, number];
      const [br, bc] = b.shape as [number, number];
      const m = transA ? ac : ar;
      const k = transA ? ar : ac;
      const n = transB ? br : bc;
      if ((transB ? bc : br) !== k) throw new KernelError(`Gemm: inner dimensions ${k} and ${transB ? bc : br} differ`);
      const out = makeValue(a.dtype, [m, n]);
      let af = asFloat(a, 'Gemm');
      if (transA) af = transpose2d(af, ar, ac);
      const of = out.data instanceof Float32Array || out.data instanceof Float64Array ? out.data : new Float64Array(m * n);
      matmulInto(of, 0, af, 0, asFloat(b, 'Gemm'), 0, m, n, k, transB);
      if (alpha !== 1) for (let i = 0; i < of.length; i++) of[i] = alpha * of[i]!;
      if (c && beta !== 0) {
        const cf = asFloat(c, 'Gemm');
        const cs = c.shape;
        if (cs.length > 2) throw new KernelError('Gemm: C must broadcast to [M, N]');
        const rowsC = cs.length === 2 ? cs[0]! : 1;
        const colsC = cs.length >= 1 ? cs[cs.length - 1]! : 1;
        if ((rowsC !== 1 && rowsC !== m) || (colsC !== 1 && colsC !== n)) throw new KernelError(`Gemm: C of shape [${cs.join(', ')}] does not broadcast to [${m}, ${n}]`);
        for (let i = 0; i < m; i++) {
          const ci = rowsC === 1 ? 0 : i * colsC;
          for (let j = 0; j < n; j++) of[i * n + j] = of[i * n + j]! + beta * cf[ci + (colsC === 1 ? 0 : j)]!;
        }
      }
      writeBack(out, of);
      if (isHalf(out.dtype)) roundHalf(out.dtype, out.data as Float32Array);
      return [out];
    };
  },
};
