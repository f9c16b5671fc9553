import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpz } from '../src/api/npz.js';
import { startServer, type Server } from '../src/serve/server.js';
import { cli, ROOT, tempDir } from './cli-helpers.js';
import { peerPython, PYTHON_DIR } from './peers.js';

const execFileAsync = promisify(execFile);
const python = peerPython();
const SCRIPT = join(PYTHON_DIR, 'serve_peer.py');
const OR_SAVEDMODEL = join(ROOT, 'samples', 'or-gate', 'or-gate-savedmodel');

/** Runs python/serve_peer.py without blocking this process's event loop (the server lives in it). */
async function peer(args: string[], input?: string): Promise<unknown> {
  const child = execFileAsync(python!, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 110_000, maxBuffer: 1 << 26, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  if (input !== undefined) {
    child.child.stdin!.write(input);
    child.child.stdin!.end();
  }
  const { stdout } = await child;
  return stdout.trim() === '' ? undefined : JSON.parse(stdout);
}

/** A TF Serving client in Python: `requests.post(url, data=json.dumps(body))`. */
async function requestsPost(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  return (await peer(['post', url], JSON.stringify(body))) as { status: number; body: Record<string, unknown> };
}

function runCli(args: string[]): number[] {
  const r = cli(['run', ...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return Object.values((JSON.parse(r.stdout) as { outputs: Record<string, { data: number[] }> }).outputs)[0]!.data.map((v) => Math.fround(v));
}

const flat = (v: unknown): number[] => (v as unknown[]).flat(Infinity as 1) as number[];

describe.skipIf(!python)('modelbridge serve with Python requests and TensorFlow', () => {
  let dir: string;
  let server: Server;
  let cnnRows: number[][][][];
  let cnnTf: number[];
  let cnnRun: number[];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = tempDir('modelbridge-serve-peer-');
    cpSync(OR_SAVEDMODEL, join(dir, 'or', '1'), { recursive: true });
    // Version 1, and another CNN whose golden outputs a broken version 2 will carry (last test).
    await peer(['cnn', join(dir, 'cnn', '1'), '0', join(dir, 'stage-other'), '1']);
    const inputs = readNpz(readFileSync(join(dir, 'cnn', '1', 'golden-inputs.npz')), 'golden-inputs.npz').get('image')!;
    const values = Array.from(inputs.toFloat32());
    cnnRows = Array.from({ length: 2 }, (_, n) => Array.from({ length: 8 }, (_, h) => Array.from({ length: 8 }, (_, w) => values.slice(((n * 8 + h) * 8 + w) * 3, ((n * 8 + h) * 8 + w) * 3 + 3))));
    cnnTf = Array.from(readNpz(readFileSync(join(dir, 'cnn', '1', 'golden-outputs.npz')), 'golden-outputs.npz').get('probabilities')!.toFloat32());
    cnnRun = runCli([join(dir, 'cnn', '1'), '--input', `image=@${join(dir, 'cnn', '1', 'golden-inputs.npz')}`]);
    const stream = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    server = await startServer({
      models: [
        { name: 'or', basePath: join(dir, 'or'), policy: { kind: 'latest', count: 1 }, labels: new Map() },
        { name: 'cnn', basePath: join(dir, 'cnn'), policy: { kind: 'latest', count: 1 }, labels: new Map([['stable', 1]]) },
      ],
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 1 << 20,
      maxBatchSize: 64,
      timeoutMs: 30_000,
      maxQueue: 64,
      pollMs: 300,
      settleMs: 100,
      logLevel: 'info',
      logStream: stream,
    });
  }, 300_000);

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the OR gate SavedModel: requests with TF Serving's documented bodies get modelbridge run's and TensorFlow's predictions", async () => {
    const rows = [[0, 0], [0, 1], [1, 0], [1, 1]];
    const expected = runCli([OR_SAVEDMODEL, '--input', JSON.stringify(rows)]);
    const tf = flat(((await peer(['tf', OR_SAVEDMODEL], JSON.stringify({ x: rows }))) as Record<string, unknown>)['y']);
    const row = await requestsPost(`${server.url}/v1/models/or:predict`, { instances: rows });
    expect(row.status).toBe(200);
    expect(flat(row.body['predictions']).map(Math.fround)).toEqual(expected);
    const col = await requestsPost(`${server.url}/v1/models/or/versions/1:predict`, { signature_name: 'serving_default', inputs: { x: rows } });
    expect(col.status).toBe(200);
    expect(flat(col.body['outputs']).map(Math.fround)).toEqual(expected);
    flat(row.body['predictions']).forEach((v, i) => expect(Math.abs(v - tf[i]!)).toBeLessThan(1e-6));
    const wrong = await requestsPost(`${server.url}/v1/models/or:predict`, { instances: [[1, 1, 1]] });
    expect(wrong).toEqual({ status: 400, body: { error: 'input x must have shape [?, 2], got [1, 3]' } });
  });

  it('a TensorFlow CNN, checked against its golden outputs when loaded, answers as TensorFlow does', async () => {
    const r = await requestsPost(`${server.url}/v1/models/cnn/labels/stable:predict`, { instances: cnnRows });
    expect(r.status).toBe(200);
    const got = flat(r.body['predictions']);
    expect(got.map(Math.fround)).toEqual(cnnRun);
    got.forEach((v, i) => expect(Math.abs(v - cnnTf[i]!)).toBeLessThan(1e-5));
    const meta = (await (await fetch(`${server.url}/v1/models/cnn/metadata`)).json()) as { metadata: { signature_def: { signature_def: Record<string, { inputs: Record<string, { dtype: string; tensor_shape: { dim: Array<{ size: string }> } }> }> } } };
    const image = meta.metadata.signature_def.signature_def['serving_default']!.inputs['image']!;
    expect(image.dtype).toBe('DT_FLOAT');
    expect(image.tensor_shape.dim.map((d) => d.size)).toEqual(['-1', '8', '8', '3']);
  });

  it('a version whose golden outputs it does not reproduce is refused; version 1 keeps serving', async () => {
    const other = join(dir, 'stage-other');
    const stage = join(dir, 'stage-2');
    cpSync(join(dir, 'cnn', '1'), stage, { recursive: true });
    copyFileSync(join(other, 'golden-outputs.npz'), join(stage, 'golden-outputs.npz'));
    cpSync(stage, join(dir, 'cnn', '2'), { recursive: true });
    let status: Array<{ version: string; state: string; status: { error_code: string; error_message: string } }> = [];
    for (let i = 0; i < 100; i++) {
      status = ((await (await fetch(`${server.url}/v1/models/cnn`)).json()) as { model_version_status: typeof status }).model_version_status;
      if (status.some((s) => s.version === '2' && s.state === 'END')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const v2 = status.find((s) => s.version === '2')!;
    expect(v2.state).toBe('END');
    expect(v2.status.error_message).toMatch(/check golden failed/);
    expect(status.find((s) => s.version === '1')!.state).toBe('AVAILABLE');
    const r = await requestsPost(`${server.url}/v1/models/cnn:predict`, { instances: cnnRows });
    expect(flat(r.body['predictions']).map(Math.fround)).toEqual(cnnRun);
    expect(logs.join('')).toContain('"version":2');
  });
});
