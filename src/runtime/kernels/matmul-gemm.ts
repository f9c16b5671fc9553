import { isConstant } from '../constants.js';
import { markFused } from '../fuse.js';
import { runsOnce } from '../once.js';
import { float32Output, sizeOfShape, type Value } from '../value.js';
import { GemmCall, packB, packedConstant, type Job } from '../wasm/gemm.js';

/** Below this many multiply-adds the WebAssembly call costs more than the JS loop (see gemm-core.ts). */
const MIN_WORK = 512;

/**
 * float32 MatMul and Gemm through the WebAssembly kernel with what the general path cannot do: a
 * constant right-hand side (a layer's weight) packed once, a stack of products (attention's
 * Q·Kᵀ and P·V) as one job the threads share, and a folded bias and Relu/Clip applied per tile.
 * Each returns undefined when its case does not apply, so the caller's general path runs.
 */

/** The bias (one value per output column) and clamp a fused node asks for, if this product can take them. */
function epilogue(bias: Value | undefined, n: number): { ok: boolean; data?: Float32Array } {
  if (!bias) return { ok: true };
  if (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== n) return { ok: false };
  return { ok: true, data: bias.data as Float32Array };
}

/**
 * numpy.matmul for float32 A [..., M, K] and B [K, N] (a shared B: the batches of A stack into
 * one tall product) or B [..., K, N] with the same batch shape as A.
 */
export function matmulWasm(
  a: Value, b: Value, bias: Value | undefined, clamp: readonly [number, number] | undefined, fused: boolean, residual?: Value,
): Value | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const m = a.shape[a.shape.length - 2]!;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[b.shape.length - 1]!;
  if (b.shape[b.shape.length - 2] !== k) return undefined;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const shared = sizeOfShape(bBatch) === 1 && bBatch.length <= aBatch.length;
  const stacked = !shared && aBatch.length === bBatch.length && aBatch.every((d, i) => d === bBatch[i]);
  if (!shared && !stacked) return undefined;
  const batches = sizeOfShape(aBatch);
  if (m * n * k * batches < MIN_WORK || m === 0 || n === 0 || k === 0) return undefined;
  const extra = fused ? epilogue(bias, n) : { ok: true };
  if (!extra.ok) return undefined;
  const outShape = [...aBatch, m, n];
  const rows = shared ? batches * m : m;
  // (the caller checked a residual's shape: outShape's, so C's layout)
  return product(
    shared ? rows : m, n, k, a.data as Float32Array,
    { kind: 'matrix', value: b, data: b.data as Float32Array, transposed: false, constant: shared && isConstant(b) },
    shared ? 1 : batches, outShape, fused ? extra.data : undefined, fused ? clamp : undefined, fused, fused ? residual : undefined,
  );
}

/** Gemm with transA = 0, alpha = 1 and C absent or a bias row ([N] or [1, N]) with beta = 1. */
export function gemmWasm(
  a: Value, b: Value, c: Value | undefined, transB: boolean, clamp: readonly [number, number] | undefined,
): Value | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length !== 2 || b.shape.length !== 2) return undefined;
  const [m, k] = a.shape as [number, number];
  const n = transB ? b.shape[0]! : b.shape[1]!;
  if ((transB ? b.shape[1] : b.shape[0]) !== k || m * n * k < MIN_WORK || m === 0 || n === 0 || k === 0) return undefined;
  let bias: Float32Array | undefined;
  if (c) {
    if (c.dtype !== 'float32' || !((c.shape.length === 1 && c.shape[0] === n) || (c.shape.length === 2 && c.shape[0] === 1 && c.shape[1] === n))) return undefined;
    bias = c.data as Float32Array;
  }
  return product(m, n, k, a.data as Float32Array, { kind: 'matrix', value: b, data: b.data as Float32Array, transposed: transB, constant: isConstant(b) }, 1, [m, n], bias, clamp, clamp !== undefined);
}

interface RightOperand {
  kind: 'matrix';
  /** The Value, the key of its packed form when it is a constant. */
  value: Value;
  data: Float32Array;
  transposed: boolean;
  constant: boolean;
}

/** C[batch][m, n] = A[batch][m, k] · B[batch] (+ bias row, + residual, clamp), through one job. */
function product(
  m: number, n: number, k: number, a: Float32Array, b: RightOperand, batch: number, shape: number[],
  bias: Float32Array | undefined, clamp: readonly [number, number] | undefined, fused: boolean, residual?: Value,
): Value | undefined {
  // A session that runs once uses its weights in place (src/runtime/once.ts): a large one then
  // streams through WebAssembly memory a block of columns at a time.
  const once = runsOnce();
  if (once && b.constant && batch === 1 && !residual && k * n * 4 > SLAB_BYTES) return slabbed(m, n, k, a, b, shape, bias, clamp, fused);
  const packed = b.constant && batch === 1 && !once ? packedConstant(b.value, `b:${b.transposed ? 't' : 'n'}:${k}:${n}`, () => packB(b.data, 0, n, k, b.transposed)) : null;
  const call = GemmCall.begin();
  if (!call) return undefined;
  try {
    const aPtr = call.put(a);
    const bPtr = packed ? packed.ptr : aPtr && call.put(b.data);
    const cPtr = bPtr && call.alloc(batch * m * n * 4);
    const biasPtr = bias ? cPtr && call.put(bias) : cPtr;
    const residualPtr = residual ? biasPtr && call.put(residual.data as Float32Array) : biasPtr;
    if (!residualPtr) return undefined;
    const job: Job = {
      m, n, k,
      aMode: 0, a: aPtr, lda: k,
      bMode: packed ? 2 : b.transposed ? 1 : 0, b: bPtr, ldb: b.transposed ? k : n,
      c: cPtr, ldc: n,
      biasMode: bias ? 2 : 0, bias: bias ? biasPtr : 0,
      clamp,
      batch, strideA: m * k * 4, strideB: packed ? 0 : k * n * 4, strideC: m * n * 4,
      residual: residual ? residualPtr : 0,
    };
    if (!call.run(job)) return undefined;
    const out = float32Output(shape);
    call.get(cPtr, out.data as Float32Array, 0, batch * m * n);
    return fused ? markFused(out) : out;
  } finally {
    call.end();
  }
}

/** The most of a weight a run-once product copies into WebAssembly memory at a time. */
const SLAB_BYTES = 8 * 1024 * 1024;

/**
 * C[m, n] = A[m, k] · B (+ bias row, clamp) with B, a large constant used once, copied into
 * WebAssembly memory a contiguous block at a time, so the memory it takes is one block however
 * large B is. A transposed B [n, k] gives whole output columns per block (rows of B), each a
 * complete product with its bias and clamp. A plain B [k, n] gives a block of its rows, a slice
 * of the sum over k: each block's product adds the previous partial C (the GEMM's residual input,
 * from a second buffer: the kernel writes C before its epilogue reads the residual), the bias
 * goes in with the first block and the clamp with the last.
 */
function slabbed(
  m: number, n: number, k: number, a: Float32Array, b: RightOperand, shape: number[],
  bias: Float32Array | undefined, clamp: readonly [number, number] | undefined, fused: boolean,
): Value | undefined {
  const call = GemmCall.begin();
  if (!call) return undefined;
  try {
    const out = float32Output(shape);
    const c = out.data as Float32Array;
    const aPtr = call.put(a);
    if (b.transposed) {
      const cols = Math.max(8, Math.floor(SLAB_BYTES / (k * 4 * 8)) * 8);
      const slab = aPtr && call.alloc(cols * k * 4 + 32);
      const cPtr = slab && call.alloc(m * cols * 4 + 32);
      const biasPtr = bias ? cPtr && call.alloc(cols * 4 + 32) : cPtr;
      if (!biasPtr) return undefined;
      const block = new Float32Array(m * cols);
      for (let j0 = 0; j0 < n; j0 += cols) {
        const nb = Math.min(cols, n - j0);
        call.set(slab, b.data.subarray(j0 * k, (j0 + nb) * k));
        if (bias) call.set(biasPtr, bias.subarray(j0, j0 + nb));
        const job: Job = {
          m, n: nb, k, aMode: 0, a: aPtr, lda: k, bMode: 1, b: slab, ldb: k, c: cPtr, ldc: nb,
          biasMode: bias ? 2 : 0, bias: bias ? biasPtr : 0, clamp, batch: 1, strideA: 0, strideB: 0, strideC: 0,
        };
        if (!call.run(job)) return undefined;
        call.get(cPtr, block, 0, m * nb);
        for (let i = 0; i < m; i++) c.set(block.subarray(i * nb, (i + 1) * nb), i * n + j0);
      }
    } else {
      const rows = Math.max(1, Math.floor(SLAB_BYTES / (n * 4)));
      const slab = aPtr && call.alloc(rows * n * 4 + 32);
      const cA = slab && call.alloc(m * n * 4 + 32);
      const cB = cA && call.alloc(m * n * 4 + 32);
      const biasPtr = bias ? cB && call.put(bias) : cB;
      if (!biasPtr) return undefined;
      let previous = 0;
      let current = cA;
      for (let k0 = 0; k0 < k; k0 += rows) {
        const kb = Math.min(rows, k - k0);
        call.set(slab, b.data.subarray(k0 * n, (k0 + kb) * n));
        const first = k0 === 0;
        const job: Job = {
          m, n, k: kb, aMode: 0, a: aPtr + k0 * 4, lda: k, bMode: 0, b: slab, ldb: n, c: current, ldc: n,
          biasMode: bias && first ? 2 : 0, bias: bias && first ? biasPtr : 0, batch: 1, strideA: 0, strideB: 0, strideC: 0,
          ...(k0 + kb >= k && clamp ? { clamp } : {}),
          residual: previous,
        };
        if (!call.run(job)) return undefined;
        previous = current;
        current = current === cA ? cB : cA;
      }
      call.get(previous, c, 0, m * n);
    }
    return fused ? markFused(out) : out;
  } finally {
    call.end();
  }
}

/** How a float32 tensor is read as a stack of matrices: batch dims, rows, cols and element strides. */
interface Strided {
  batch: readonly number[];
  rows: number;
  cols: number;
  rowStride: number;
  colStride: number;
  batchStride: number;
}

/**
 * `x` as the stack of matrices the Transpose `perm` would have made of it, without moving it:
 * [1, S, H, D] under [0, 2, 1, 3] is H matrices S×D (rows H·D apart, heads D apart), under
 * [0, 2, 3, 1] H matrices D×S (columns H·D apart). No perm: x as it is ([..., M, K], contiguous).
 */
function stridedView(x: Value, perm: readonly number[] | undefined): Strided | undefined {
  const r = x.shape.length;
  if (!perm) {
    if (r < 2) return undefined;
    const rows = x.shape[r - 2]!;
    const cols = x.shape[r - 1]!;
    return { batch: x.shape.slice(0, -2), rows, cols, rowStride: cols, colStride: 1, batchStride: rows * cols };
  }
  if (r !== 4 || x.shape[0] !== 1) return undefined;
  const [, s, h, d] = x.shape as [number, number, number, number];
  if (perm[2] === 1) return { batch: [1, h], rows: s, cols: d, rowStride: h * d, colStride: 1, batchStride: d };
  return { batch: [1, h], rows: d, cols: s, rowStride: 1, colStride: h * d, batchStride: d };
}

/**
 * numpy.matmul of float32 stacks read through their head Transposes (fuse.ts's operandPerms) and
 * written through the one after (outPerm [0, 2, 1, 3]: C's heads merged back into rows), as one
 * job of the module: the Transposes' copies never happen. Undefined when the layout is not one
 * the job's strides express (the caller then transposes and multiplies).
 */
export function matmulPermuted(
  a: Value, b: Value, perms: readonly [readonly number[] | undefined, readonly number[] | undefined] | undefined, outPerm: readonly number[] | undefined,
): Value | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const av = stridedView(a, perms?.[0]);
  const bv = stridedView(b, perms?.[1]);
  if (!av || !bv || av.colStride !== 1 || av.cols !== bv.rows) return undefined;
  if (av.batch.length !== bv.batch.length || av.batch.some((d, i) => d !== bv.batch[i])) return undefined;
  const m = av.rows;
  const k = av.cols;
  const n = bv.cols;
  const batch = sizeOfShape(av.batch);
  if (m * n * k * batch < MIN_WORK || m === 0 || n === 0 || k === 0) return undefined;
  // B row-major ([K, N] rows ldb apart) or given as [N, K] (bMode 1: its rows are B's columns)
  const bByRows = bv.colStride === 1;
  if (!bByRows && bv.rowStride !== 1) return undefined;
  let shape: number[];
  let ldc: number;
  let strideC: number;
  if (outPerm) {
    if (av.batch.length !== 2 || av.batch[0] !== 1) return undefined;
    const h = av.batch[1]!;
    shape = [1, m, h, n];
    ldc = h * n;
    strideC = n;
  } else {
    shape = [...av.batch, m, n];
    ldc = n;
    strideC = m * n;
  }
  const call = GemmCall.begin();
  if (!call) return undefined;
  try {
    const aPtr = call.put(a.data as Float32Array);
    const bPtr = aPtr && call.put(b.data as Float32Array);
    const cPtr = bPtr && call.alloc(batch * m * n * 4 + 32);
    if (!cPtr) return undefined;
    const job: Job = {
      m, n, k,
      aMode: 0, a: aPtr, lda: av.rowStride,
      bMode: bByRows ? 0 : 1, b: bPtr, ldb: bByRows ? bv.rowStride : bv.colStride,
      c: cPtr, ldc,
      biasMode: 0, bias: 0,
      batch, strideA: av.batchStride * 4, strideB: bv.batchStride * 4, strideC: strideC * 4,
    };
    if (!call.run(job)) return undefined;
    const out = float32Output(shape);
    call.get(cPtr, out.data as Float32Array, 0, batch * m * n);
    return markFused(out);
  } finally {
    call.end();
  }
}
