import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './cli-helpers.js';

/**
 * Resource limits by construction (docs/limits.md): small files that declare huge data are refused
 * in one line, exit 2, within bounded time and memory, before anything large is allocated.
 */
const BIN = join(ROOT, 'bin', 'modelbridge.cjs');
const HOSTILE = join(ROOT, 'test', 'fixtures', 'hostile');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const MiB = 1024 * 1024;

/** Runs the CLI (under /usr/bin/time when there is one, for the peak RSS in KiB). */
function run(args: readonly string[], env: Record<string, string> = {}) {
  const command = TIME ? [TIME, '-f', 'peak-rss-kib %M', process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 10_000, env: { ...process.env, MODELBRIDGE_DEBUG: '', ...env } });
  expect(r.error, 'the command must finish within 10 s').toBeUndefined();
  const lines = r.stderr.trimEnd().split('\n');
  const rss = TIME ? Number(/peak-rss-kib (\d+)/.exec(lines.pop() ?? '')?.[1]) * 1024 : undefined;
  const code = TIME && lines.at(-1)?.startsWith('Command exited with non-zero status') ? (lines.pop(), r.status ?? -1) : r.status ?? -1;
  return { code, stderr: lines.join('\n'), rss };
}

function refused(args: readonly string[], file: string, what: RegExp, env: Record<string, string> = {}): void {
  const r = run(args, env);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(what);
  expect(r.stderr).toMatch(/within the memory budget of .* \(set MODELBRIDGE_MAX_MEMORY to allow more\)/);
  if (r.rss !== undefined) expect(r.rss, 'peak RSS at most 256 MiB + the file').toBeLessThan(256 * MiB + statSync(file).size);
}

/** A zip of one member: `data` deflated, its local and central headers declaring `declared` bytes. */
function zipOne(name: string, data: Uint8Array, declared: number, extra: [string, Uint8Array][] = []): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const add = (entry: string, body: Uint8Array, method: number, size: number) => {
    const nameBytes = Buffer.from(entry);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(0, 14); // CRC unknown: a bomb is refused before it is checked
    local.writeUInt32LE(body.byteLength, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(method, 10);
    dir.writeUInt32LE(body.byteLength, 20);
    dir.writeUInt32LE(size, 24);
    dir.writeUInt16LE(nameBytes.length, 28);
    dir.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, Buffer.from(body));
    central.push(dir, nameBytes);
    offset += 30 + nameBytes.length + body.byteLength;
  };
  add(name, deflateRawSync(data), 8, declared);
  for (const [entry, body] of extra) add(entry, body, 0, body.byteLength);
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1 + extra.length, 8);
  end.writeUInt16LE(1 + extra.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

describe('resource limits: declared sizes are checked against the memory budget before allocating', () => {
  const dir = tempDir();

  it('a GraphDef Const broadcast from one float to 300M elements (118 bytes)', () => {
    const file = join(HOSTILE, 'broadcast.pb');
    refused(['convert', file, join(dir, 'a.safetensors')], file, /broadcast\.pb: node big \(Const\) value values: a constant broadcast to \[300000000\] float32/);
    expect(existsSync(join(dir, 'a.safetensors'))).toBe(false);
  });

  it('a GraphDef Const repeating one string 300M times', () => {
    const file = join(HOSTILE, 'broadcast-strings.pb');
    refused(['inspect', file], file, /string_val: a string constant broadcast to \[300000000\]/);
  });

  it('an ONNX sparse initializer of 2^30 strings, and a Constant whose sparse_value densifies to 300M floats', () => {
    const strings = join(HOSTILE, 'sparse-strings.onnx');
    refused(['inspect', strings], strings, /sparse_initializer s: a densified sparse tensor of \[1073741824\] string/);
    const constant = join(HOSTILE, 'constant-sparse.onnx');
    refused(['run', constant, '--input', '[1]'], constant, /a densified sparse tensor of \[300000000\] float32/);
  });

  it('a .pt whose deflated data.pkl declares 1 GiB, and an .npz member declaring 1 GiB', () => {
    const pt = join(dir, 'bomb.pt');
    writeFileSync(pt, zipOne('archive/data.pkl', new Uint8Array(1 << 16), 1 << 30, [['archive/version', Buffer.from('3\n')]]));
    refused(['inspect', pt], pt, /zip entry "archive\/data\.pkl": inflated data .* not 1024\.0 MiB/);
    const npz = join(dir, 'bomb.npz');
    writeFileSync(npz, zipOne('x.npy', new Uint8Array(1 << 16), 1 << 30));
    refused(['validate', join(ROOT, 'samples', 'or-gate', 'or-gate.onnx'), '--inputs', npz], npz, /member "x\.npy": inflated data/);
  });

  it('a pickle of a million Nones: refused under a 16 MiB budget, read under the default one', () => {
    const body = Buffer.concat([Buffer.from([0x80, 0x02, 0x5d, 0x71, 0x00]), Buffer.from(`(${'N'.repeat(1000)}e`.repeat(1000), 'latin1'), Buffer.from('.')]);
    const pt = join(dir, 'nones.pt');
    writeFileSync(pt, zipStored([['archive/data.pkl', body], ['archive/version', Buffer.from('3\n')]]));
    refused(['inspect', pt], pt, /archive\/data\.pkl byte \d+: container items/, { MODELBRIDGE_MAX_MEMORY: '16M' });
    const fine = run(['inspect', pt]);
    expect(fine.stderr).not.toMatch(/memory budget/);
  });

  it('an unreadable MODELBRIDGE_MAX_MEMORY is a usage error', () => {
    const r = run(['inspect', join(HOSTILE, 'broadcast.pb')], { MODELBRIDGE_MAX_MEMORY: 'lots' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: MODELBRIDGE_MAX_MEMORY must be a size in bytes such as 268435456 or 256M, not "lots"$/);
  });
});

/** A zip of stored members (no compression), CRCs left zero. */
function zipStored(members: [string, Uint8Array][]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [entry, body] of members) {
    const nameBytes = Buffer.from(entry);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(body.byteLength, 18);
    local.writeUInt32LE(body.byteLength, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt32LE(body.byteLength, 20);
    dir.writeUInt32LE(body.byteLength, 24);
    dir.writeUInt16LE(nameBytes.length, 28);
    dir.writeUInt32LE(offset, 42);
    parts.push(local, nameBytes, Buffer.from(body));
    central.push(dir, nameBytes);
    offset += 30 + nameBytes.length + body.byteLength;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}
