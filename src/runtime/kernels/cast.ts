import type { DType } from '../../core/dtypes.js';
import { attrInt } from '../../core/graph.js';
import { onnxCodeToDType, onnxTypeName } from '../../formats/onnx/dtypes.js';
import { KernelError, required, type KernelFactory } from '../kernel.js';
import { isBig, isComputable, isFloatDType, makeValue, type SmallArray, type Value } from '../value.js';

/**
 * Converts a value to another dtype as ONNX's Cast does: floats to integers truncate toward zero
 * (out-of-range results wrap like a C cast on typed-array stores), anything to bool is `x != 0`,
 * int64 to float rounds to nearest. 16-bit float targets are rounded by the executor.
 */
export function castValue(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  const out = makeValue(to, x.shape);
  const n = x.data.length;
  const dst = out.data;
  if (isBig(dst)) {
    const src = x.data;
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      if (typeof v === 'bigint') dst[i] = v;
      else dst[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
    }
    return out;
  }
  const target = dst as SmallArray;
  const fromFloat = isFloatDType(x.dtype);
  if (to === 'bool') {
    for (let i = 0; i < n; i++) target[i] = Number(x.data[i]!) !== 0 ? 1 : 0;
  } else if (isFloatDType(to) || !fromFloat) {
    for (let i = 0; i < n; i++) target[i] = Number(x.data[i]!);
  } else {
    const src = x.data as SmallArray;
    for (let i = 0; i < n; i++) target[i] = Math.trunc(src[i]!);
  }
  return out;
}

const Cast: KernelFactory = {
  prepare(node) {
    const code = attrInt(node, 'to', 0);
    const to = onnxCodeToDType(code);
    if (!to || !isComputable(to)) throw new KernelError(`Cast: the runtime cannot cast to ${to ?? onnxTypeName(code)}`);
    return (inputs) => [castValue(required(inputs, 0, 'Cast'), to)];
  },
};

/** CastLike (opset 15): casts input 0 to the dtype of input 1. */
const CastLike: KernelFactory = {
  prepare: () => (inputs) => [castValue(required(inputs, 0, 'CastLike'), required(inputs, 1, 'CastLike').dtype)],
};

export const CAST_OPS: Readonly<Record<string, KernelFactory>> = { Cast, CastLike };
