import { attrFloat, attrInt } from '../../core/graph.js';
import { broadcastShapes, broadcastStrides } from '../broadcast.js';
import { formatDims, KernelError, required, sameDType, type KernelFactory } from '../kernel.js';
import { isBig, makeValue, sizeOfShape, type FloatArray, type SmallArray, type Value } from '../value.js';
import { fusionOf } from '../fuse.js';
import { matmulInto } from './gemm-core.js';
import { gemmWasm, matmulPermuted, matmulWasm } from './matmul-gemm.js';
import { contiguousStrides, copyStrided } from './strided.js';
import type { MatrixOperand } from './sgemm.js';

function isFloatData(v: Value): v is Value & { data: FloatArray } {
  return v.data instanceof Float32Array || v.data instanceof Float64Array;
}

/**
 * Exact integer product for the integer types MatMul and Gemm allow: 64-bit in BigInt, 32-bit
 * wrapping like C (Math.imul), narrower types exactly in float64.
 */
function integerProduct(m: number, n: number, k: number, a: Value, aOp: Omit<MatrixOperand, 'data'>, b: Value, bOp: Omit<MatrixOperand, 'data'>, out: Value, outOffset: number): void {
  const at = (op: Omit<MatrixOperand, 'data'>, i: number, j: number) => op.offset + i * op.rowStride + j * op.colStride;
  if (isBig(a.data) && isBig(b.data)) {
    const A = a.data;
    const B = b.data;
    const C = out.data as BigInt64Array;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0n;
        for (let p = 0; p < k; p++) s += A[at(aOp, i, p)]! * B[at(bOp, p, j)]!;
        C[outOffset + i * n + j] = s; // the store wraps to 64 bits
      }
    }
    return;
  }
  const A = a.data as SmallArray;
  const B = b.data as SmallArray;
  const C = out.data as SmallArray;
  const wide = a.dtype === 'int32' || a.dtype === 'uint32';
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const x = A[at(aOp, i, p)]!;
        const y = B[at(bOp, p, j)]!;
        s = wide ? (s + Math.imul(x, y)) | 0 : s + x * y;
      }
      C[outOffset + i * n + j] = s;
    }
  }
}

function product(m: number, n: number, k: number, a: Value, aOp: Omit<MatrixOperand, 'data'>, b: Value, bOp: Omit<MatrixOperand, 'data'>, out: Value, outOffset: number): void {
  if (isFloatData(a) && isFloatData(b) && (out.data instanceof Float32Array || out.data instanceof Float64Array)) {
    // matmulInto takes A row-major; a transposed A (Gemm transA) is copied once into that layout.
    let A = a.data;
    let aOffset = aOp.offset;
    if (aOp.colStride !== 1) {
      A = new (A.constructor as Float32ArrayConstructor)(m * k);
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) A[i * k + p] = a.data[aOp.offset + i * aOp.rowStride + p * aOp.colStride]!;
      aOffset = 0;
    }
    matmulInto(out.data, outOffset, A, aOffset, b.data, bOp.offset, m, n, k, bOp.colStride !== 1);
  } else {
    integerProduct(m, n, k, a, aOp, b, bOp, out, outOffset);
  }
}

/** A row-major matrix with `cols` columns stored at `offset`, optionally read transposed. */
const rowMajor = (offset: number, cols: number, transposed = false): Omit<MatrixOperand, 'data'> =>
  transposed ? { offset, rowStride: 1, colStride: cols } : { offset, rowStride: cols, colStride: 1 };

/** x under a Transpose's perm (the fallback of a folded head Transpose). */
function transposed(x: Value, perm: readonly number[]): Value {
  if (perm.length !== x.shape.length) throw new KernelError(`MatMul: a folded Transpose's perm [${perm.join(', ')}] does not fit rank ${x.shape.length}`);
  const strides = contiguousStrides(x.shape);
  const shape = perm.map((p) => x.shape[p]!);
  const out = makeValue(x.dtype, shape);
  copyStrided(x.data, out.data, shape, perm.map((p) => strides[p]!), 0);
  return out;
}

/** True when `residual` is float32 with the shape of A · B (2-D or more), so the product can add it per tile. */
function residualFits(a: Value, b: Value, residual: Value | undefined): boolean {
  if (!residual || residual.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2 || residual.shape.length !== Math.max(a.shape.length, b.shape.length)) return false;
  const want = [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!];
  return want.every((d, i) => residual.shape[i] === d);
}

/** numpy.matmul: stacks of matrices with broadcast batch axes; a 1-D operand gets a unit axis. */
export const MatMul: KernelFactory = {
  prepare: (node) => {
    const fusion = fusionOf(node);
    const permuted = fusion?.operandPerms !== undefined || fusion?.outPerm !== undefined;
    return (inputs) => {
      let a = required(inputs, 0, 'MatMul');
      let b = required(inputs, 1, 'MatMul');
      const dtype = sameDType([a, b], 'MatMul');
      if (permuted) {
        // attention's head Transposes folded in (fuse.ts): read through strides when the module
        // can; else transposed here as the dropped nodes would have, the product made as usual and
        // the Transpose after it (a folded stage) left to its kernel
        const fast = matmulPermuted(a, b, fusion!.operandPerms, fusion!.outPerm);
        if (fast) return [fast];
        const [pa, pb] = fusion!.operandPerms ?? [undefined, undefined];
        if (pa) a = transposed(a, pa);
        if (pb) b = transposed(b, pb);
      }
      // a fused node's third input is the bias its folded Add adds, the fourth a residual a second
      // Add adds (see fuse.ts); a residual the product cannot add (broadcast, another dtype)
      // leaves the whole fusion to the folded nodes' kernels
      const residual = fusion?.residual !== undefined ? inputs[3] : undefined;
      const folds = fusion !== undefined && !permuted && (fusion.residual === undefined || residualFits(a, b, residual));
      const fast = matmulWasm(a, b, fusion?.bias ? inputs[2] : undefined, fusion?.clamp, folds, folds ? residual : undefined);
      if (fast) return [fast];
      if (a.shape.length === 0 || b.shape.length === 0) throw new KernelError('MatMul: inputs must have at least one dimension');
      const aShape = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
      const bShape = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
      const m = aShape[aShape.length - 2]!;
      const k = aShape[aShape.length - 1]!;
      const n = bShape[bShape.length - 1]!;
      if (bShape[bShape.length - 2] !== k) throw new KernelError(`MatMul: ${formatDims(a.shape)} · ${formatDims(b.shape)}: inner dimensions ${k} and ${bShape[bShape.length - 2]} differ`);
      const aBatch = aShape.slice(0, -2);
      const bBatch = bShape.slice(0, -2);
      const batch = broadcastShapes(aBatch, bBatch, 'MatMul');
      const outShape = [...batch, m, n];
      if (a.shape.length === 1) outShape.splice(outShape.length - 2, 1);
      if (b.shape.length === 1) outShape.splice(outShape.length - 1, 1);
      const out = makeValue(dtype, outShape);
      const batches = sizeOfShape(batch);
      if (sizeOfShape(bBatch) === 1 && sizeOfShape(aBatch) === batches) {
        // A shared B (a layer's weight): the batches of A stack into one tall product.
        product(batches * m, n, k, a, rowMajor(0, k), b, rowMajor(0, n), out, 0);
        return [out];
      }
      const aStrides = broadcastStrides(aBatch, batch);
      const bStrides = broadcastStrides(bBatch, batch);
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
        product(m, n, k, a, rowMajor(ia * m * k, k), b, rowMajor(ib * k * n, n), out, t * m * n);
      }
      return [out];
    };
  },
};

/** Y = alpha · A' · B' + beta · C, C broadcast to [M, N] (ONNX Gemm, opset 7 and later). */
export const Gemm: KernelFactory = {
  prepare(node) {
    const transA = attrInt(node, 'transA', 0) !== 0;
    const transB = attrInt(node, 'transB', 0) !== 0;
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const clamp = fusionOf(node)?.clamp;
    return (inputs) => {
      const a = required(inputs, 0, 'Gemm');
      const b = required(inputs, 1, 'Gemm');
      const c = inputs[2];
      const dtype = sameDType([a, b], 'Gemm');
      if (!transA && alpha === 1 && (c === undefined || beta === 1)) {
        const fast = gemmWasm(a, b, c, transB, clamp);
        if (fast) return [fast];
      }
      if (a.shape.length !== 2 || b.shape.length !== 2) throw new KernelError('Gemm: A and B must be 2-D');
      const [ar, ac] = a.shape as [number, number];
      const [br, bc] = b.shape as [number, number];
      const m = transA ? ac : ar;
      const k = transA ? ar : ac;
      const n = transB ? br : bc;
      if ((transB ? bc : br) !== k) throw new KernelError(`Gemm: inner dimensions ${k} and ${transB ? bc : br} differ`);
      const out = makeValue(dtype, [m, n]);
      product(m, n, k, a, rowMajor(0, ac, transA), b, rowMajor(0, bc, transB), out, 0);
      if (alpha !== 1 || (c && beta !== 0)) addScaledC(out, alpha, c, beta, m, n);
      return [out];
    };
  },
};

/** out = alpha · out + beta · C, with C unidirectionally broadcast to [M, N]. */
function addScaledC(out: Value, alpha: number, c: Value | undefined, beta: number, m: number, n: number): void {
  const useC = c !== undefined && beta !== 0;
  if (useC && c.shape.length > 2) throw new KernelError('Gemm: C must broadcast to [M, N]');
  const rowsC = useC && c.shape.length === 2 ? c.shape[0]! : 1;
  const colsC = useC && c.shape.length >= 1 ? c.shape[c.shape.length - 1]! : 1;
  if (useC && ((rowsC !== 1 && rowsC !== m) || (colsC !== 1 && colsC !== n))) throw new KernelError(`Gemm: C of shape ${formatDims(c.shape)} does not broadcast to [${m}, ${n}]`);
  const rowStep = rowsC === 1 ? 0 : colsC;
  const colStep = colsC === 1 ? 0 : 1;
  if (isBig(out.data)) {
    const y = out.data;
    const cs = useC ? (c.data as BigInt64Array) : undefined;
    const a = BigInt(Math.trunc(alpha));
    const bt = BigInt(Math.trunc(beta));
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) y[i * n + j] = a * y[i * n + j]! + (cs ? bt * cs[i * rowStep + j * colStep]! : 0n);
    return;
  }
  const y = out.data as SmallArray;
  const cs = useC ? (c.data as SmallArray) : undefined;
  if (alpha === 1 && beta === 1 && cs && rowStep === 0 && colStep === 1) {
    // A bias row, what every Linear layer adds: a plain row-wise add.
    for (let i = 0; i < m; i++) for (let j = 0, at = i * n; j < n; j++, at++) y[at] = y[at]! + cs[j]!;
    return;
  }
  for (let i = 0; i < m; i++) {
    const ci = i * rowStep;
    for (let j = 0; j < n; j++) y[i * n + j] = alpha * y[i * n + j]! + (cs ? beta * cs[ci + j * colStep]! : 0);
  }
}
