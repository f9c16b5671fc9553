import type { Tensor } from '../../core/tensor.js';

const FLOATS = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/**
 * How ONNX's backend test runner compares an output with the expected one:
 * numpy.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-7) for floats (NaN equal to
 * NaN), exact equality otherwise, and the same dtype and shape. Returns the first difference, or
 * undefined when they agree. Shared by the conformance test and `npm run conformance`.
 */
export function conformanceMismatch(actual: Tensor, expected: Tensor): string | undefined {
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype}, expected ${expected.dtype}`;
  if (actual.shape.join() !== expected.shape.join()) return `shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`;
  const isFloat = FLOATS.has(actual.dtype);
  const a = isFloat ? actual.toFloat32() : actual.storage();
  const b = isFloat ? expected.toFloat32() : expected.storage();
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (isFloat) {
      const [p, q] = [Number(x), Number(y)];
      if (Number.isNaN(p) && Number.isNaN(q)) continue;
      if (Math.abs(p - q) <= 1e-7 + 1e-3 * Math.abs(q)) continue;
    }
    return `element ${i}: ${x}, expected ${y}`;
  }
  return undefined;
}
