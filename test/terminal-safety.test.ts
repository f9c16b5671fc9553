import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeControl } from '../src/core/printable.js';
import { describeError } from '../src/cli/errors.js';
import { FormatError } from '../src/core/errors.js';
import { renderTable } from '../src/cli/table.js';
import { cli, tempDir } from './cli-helpers.js';

// Anything a terminal would act on: C0, DEL, C1 (U+009B is CSI), bidi overrides.
const HOSTILE = 'x\n\r\t\u001b]0;owned\u0007\u001b[2J\u007f\u009b31m\u202ey';
const RAW = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** A safetensors state dict of one float32 vector of n zeros named `name`. */
function safetensors(file: string, name: string, n: number): string {
  const header = Buffer.from(JSON.stringify({ [name]: { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(file, Buffer.concat([size, header, Buffer.alloc(4 * n)]));
  return file;
}

describe('one safe line: names and paths from files and command lines never drive the terminal', () => {
  it('escapes every control, C1 and bidi character and keeps printable text, Unicode included', () => {
    const out = escapeControl(HOSTILE);
    expect(out).not.toMatch(RAW);
    expect(out).toBe('x\\n\\r\\t\\e]0;owned\\x07\\e[2J\\x7f\\x9b31m\\u202ey');
    expect(escapeControl('conv1.weight — Gewichte/重み')).toBe('conv1.weight — Gewichte/重み');
  });

  it('error lines and table cells are escaped', () => {
    const { line, code } = describeError(new FormatError(`a${HOSTILE}.onnx`, `node ${HOSTILE}`, 'something else'));
    expect(code).toBe(2);
    expect(line).not.toMatch(RAW);
    expect(line.startsWith('error: ax\\n')).toBe(true);
    const table = renderTable(['name'], [[HOSTILE]]);
    expect(table.split('\n')).toHaveLength(3);
    expect(table).not.toMatch(/[\u001b\u0007\u009b]/);
  });

  it('an errno the environment causes is one line with exit 1, not an internal error', () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    expect(describeError(full)).toEqual({ line: 'error: no space left on device (ENOSPC) during write', code: 1 });
    const denied = Object.assign(new Error('EACCES'), { code: 'EACCES', syscall: 'open', path: `/out/${HOSTILE}` });
    const d = describeError(denied);
    expect(d.code).toBe(1);
    expect(d.line).toMatch(/^error: \/out\/x\\n.*: permission denied \(EACCES\)$/);
  });

  it('the CLI prints a hostile missing path and a hostile tensor name as one escaped line', () => {
    const missing = cli(['inspect', `/nonexistent/${HOSTILE}.safetensors`]);
    expect(missing.code).not.toBe(0);
    expect(missing.code).not.toBe(70);
    expect(missing.stderr.endsWith('\n')).toBe(true);
    expect(missing.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(missing.stderr.trimEnd()).not.toMatch(RAW);

    // diff lists a tensor only one side has: its hostile name stays inside its table row.
    const dir = tempDir();
    const a = safetensors(join(dir, 'a.safetensors'), `w${HOSTILE}`, 1);
    const b = safetensors(join(dir, 'b.safetensors'), 'w', 2);
    const diff = cli(['diff', a, b]);
    expect(diff.code).toBe(1);
    expect(diff.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e\r]/);
    expect(diff.stdout).toContain('\\e]0;owned');
    expect(diff.stdout.split('\n').filter((l) => l.includes('owned'))).toHaveLength(1);
  });
});
