import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerPython, ROOT } from './peers.js';

/**
 * The model zoo (issue 11) against the real frameworks: scripts/zoo.mjs generates every
 * architecture with its producers (python/zoo.py in the peers' venv), converts each producer file
 * to every target with the CLI and checks the written files in their real consumers. Every cell
 * must have exactly the status the committed docs/zoo-matrix.json gives it: a cell that starts
 * failing fails here, and so does one that starts passing until the matrix is regenerated with
 * `npm run zoo`. The models are generated into a fresh folder for this run only.
 */
const python = peerPython();

type Status = 'pass' | 'fail' | 'impossible';

interface Cell {
  readonly architecture: string;
  readonly producer: string;
  readonly source: string;
  readonly target: string;
  readonly status: Status;
  readonly reason?: string;
}

interface Matrix {
  readonly generated_by: string;
  readonly cells: Cell[];
}

const MATRIX = join(ROOT, 'docs', 'zoo-matrix.json');
const REGENERATE = 'if the change is intended, run `npm run zoo` and commit docs/zoo-matrix.json';
const key = (c: Pick<Cell, 'architecture' | 'source' | 'target'>): string => `${c.architecture} ${c.source} -> ${c.target}`;

function readMatrix(path: string): Matrix {
  const m = JSON.parse(readFileSync(path, 'utf8')) as Matrix;
  if (!Array.isArray(m.cells)) throw new Error(`${path}: no cells`);
  return m;
}

const committed: Matrix | undefined = existsSync(MATRIX) ? readMatrix(MATRIX) : undefined;

function runZoo(out: string, matrix: string): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'zoo.mjs'), '--out', out, '--matrix', matrix, '--no-build'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('close', (status) => resolve({ status: status ?? -1, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

describe.skipIf(!python)('model zoo: every cell has the status docs/zoo-matrix.json commits', () => {
  const out = mkdtempSync(join(tmpdir(), 'modelbridge-zoo-'));
  let current: Map<string, Cell> | undefined;
  let failure = '';

  beforeAll(async () => {
    const matrix = join(out, 'zoo-matrix.json');
    const r = await runZoo(join(out, 'models'), matrix);
    if (r.status !== 0 || !existsSync(matrix)) {
      failure = `scripts/zoo.mjs exited with ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`;
      return;
    }
    current = new Map(readMatrix(matrix).cells.map((c) => [key(c), c]));
  }, 1_800_000);

  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('the matrix is committed', () => {
    expect(committed, `no ${MATRIX}: run \`npm run zoo\``).toBeDefined();
    expect(committed!.cells.length).toBeGreaterThan(0);
  });

  it('the zoo ran and produced no cell the committed matrix lacks', () => {
    expect(failure, failure).toBe('');
    const known = new Set(committed?.cells.map(key));
    const extra = [...current!.keys()].filter((k) => !known.has(k));
    expect(extra, `cells not in docs/zoo-matrix.json (${REGENERATE})`).toEqual([]);
  });

  for (const cell of committed?.cells ?? []) {
    it(`${key(cell)}: ${cell.status}`, () => {
      expect(failure, failure).toBe('');
      const now = current!.get(key(cell));
      expect(now, `the zoo no longer has this cell (${REGENERATE})`).toBeDefined();
      const why = now!.reason ? ` (${now!.reason})` : '';
      expect(now!.status, `${key(cell)} is now ${now!.status}${why}, the matrix says ${cell.status}; ${REGENERATE}`).toBe(cell.status);
    });
  }
});
