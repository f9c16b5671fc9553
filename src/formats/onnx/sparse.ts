import { dtypeBits } from '../../core/dtypes.js';
import { claimExpansion } from '../../core/budget.js';
import { formatErrors, type FormatErrors } from '../../core/errors.js';
import { formatShape } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { int64ToNumber } from '../../core/int64.js';
import type { SparseTensorProto } from './schema.js';
import { tensorFromProto, type TensorContext } from './tensor.js';

/**
 * Densifies a SparseTensorProto: `values` [NNZ] placed at `indices` ([NNZ, rank] coordinates or
 * [NNZ] linear positions) in a zero (or empty-string) tensor of shape `dims`. The IR has no sparse
 * tensors; a dense one means the same to every op that accepts it.
 */
export function sparseTensorFromProto(proto: SparseTensorProto, context: TensorContext): Tensor {
  const e: FormatErrors = formatErrors(context.file);
  const where = context.where;
  e.check(proto.values !== null && proto.indices !== null, where, 'a sparse tensor with values and indices');
  const values = tensorFromProto(proto.values, { ...context, where: `${where} (values)` });
  const indices = tensorFromProto(proto.indices, { ...context, where: `${where} (indices)` });
  const shape = proto.dims.map((d) => {
    const n = int64ToNumber(d);
    e.check(n !== undefined && n >= 0, where, 'non-negative dims');
    return n;
  });
  const total = shape.reduce((a, b) => a * b, 1);
  // Densifying allocates every element the dims declare, whatever few values the file holds.
  const perElement = values.dtype === 'string' ? 8 : Math.max(1, dtypeBits(values.dtype) / 8);
  claimExpansion(e.fail, where, `a densified sparse tensor of ${formatShape(shape)} ${values.dtype}`, total * perElement);
  e.check(values.shape.length === 1, where, `1-D values, got ${formatShape(values.shape)}`);
  const nnz = values.shape[0]!;
  e.check(indices.dtype === 'int64', where, `int64 indices, got ${indices.dtype}`);
  const idx = indices.storage() as BigInt64Array;
  const linear = indices.shape.length === 1;
  e.check(
    (linear && indices.shape[0] === nnz) || (indices.shape.length === 2 && indices.shape[0] === nnz && indices.shape[1] === shape.length),
    where,
    `indices of shape [${nnz}] or [${nnz}, ${shape.length}], got ${formatShape(indices.shape)}`,
  );
  const positions = new Array<number>(nnz);
  for (let i = 0; i < nnz; i++) {
    let at = 0;
    if (linear) {
      at = Number(idx[i]!);
    } else {
      for (let d = 0; d < shape.length; d++) {
        const k = Number(idx[i * shape.length + d]!);
        e.check(k >= 0 && k < shape[d]!, where, `index ${k} within dimension ${d} of ${formatShape(shape)}`);
        at = at * shape[d]! + k;
      }
    }
    e.check(at >= 0 && at < total, where, `linear index ${at} within ${total} elements`);
    positions[i] = at;
  }
  if (values.dtype === 'string') {
    const out = new Array<Uint8Array>(total).fill(new Uint8Array(0));
    positions.forEach((at, i) => (out[at] = values.strings![i]!));
    return Tensor.fromStrings(shape, out);
  }
  e.check(dtypeBits(values.dtype) % 8 === 0, where, `whole-byte values, got ${values.dtype}`);
  const size = dtypeBits(values.dtype) / 8;
  const src = values.bytes();
  const dst = new Uint8Array(total * size);
  positions.forEach((at, i) => dst.set(src.subarray(i * size, (i + 1) * size), at * size));
  return Tensor.fromBytes(values.dtype, shape, dst);
}
