import { UsageError } from '../core/errors.js';
import type { ReadOptions, WriteOptions } from './format.js';

/**
 * Which formats each format-specific option means something to. An option given for another
 * format is a usage error rather than silently ignored: `--quantize` on a .pt output would
 * otherwise write full-precision weights the user believes are quantized.
 */
const WRITE_OPTIONS: Readonly<Record<keyof WriteOptions, { readonly flag: string; readonly formats: readonly string[] }>> = {
  shardBytes: { flag: '--shard-size', formats: ['safetensors', 'tfjs'] },
  opset: { flag: '--opset', formats: ['onnx'] },
  externalData: { flag: '--external-data', formats: ['onnx'] },
  quantize: { flag: '--quantize', formats: ['tfjs', 'tflite'] },
};

const READ_OPTIONS: Readonly<Partial<Record<keyof ReadOptions, { readonly flag: string; readonly formats: readonly string[] }>>> = {
  key: { flag: '--key', formats: ['pytorch'] },
};

function check<T extends object>(table: Readonly<Partial<Record<keyof T, { flag: string; formats: readonly string[] }>>>, format: string, options: T, role: string): void {
  for (const [option, rule] of Object.entries(table) as [keyof T & string, { flag: string; formats: readonly string[] }][]) {
    if (options[option] === undefined || rule.formats.includes(format)) continue;
    throw new UsageError(`${rule.flag} applies to ${rule.formats.join(' and ')} ${role} only, not to ${format}`);
  }
}

/** Throws a UsageError for a write option the output format does not use. */
export function checkWriteOptions(format: string, options: WriteOptions): void {
  check(WRITE_OPTIONS, format, options, 'output');
}

/** Throws a UsageError for a read option the input format does not use. */
export function checkReadOptions(format: string, options: ReadOptions): void {
  check(READ_OPTIONS, format, options, 'input');
}
