import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT } from './cli-helpers.js';

/**
 * Issue 12: a clone with nothing beside it passes its tests. Every file a test reads lives in the
 * repository; the upstream copies are the files MANIFEST.tsv lists, byte for byte, each named
 * with its project, commit and licence in PROVENANCE.md.
 */

const FIXTURE_DIR = join(ROOT, 'test', 'fixtures');
const PROVENANCE = readFileSync(join(FIXTURE_DIR, 'PROVENANCE.md'), 'utf8');
const MANIFEST = join(FIXTURES, 'MANIFEST.tsv');

/** Every regular file under dir, as paths relative to it with '/' separators. */
function filesUnder(dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      const rel = relative(dir, path).split(sep).join('/');
      if (skip(rel)) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) out.push(rel);
    }
  };
  walk(dir);
  return out.sort();
}

interface Row {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly repo: string;
  readonly commit: string;
  readonly sourcePath: string;
  readonly licence: string;
}

const rows: Row[] = readFileSync(MANIFEST, 'utf8')
  .trimEnd()
  .split('\n')
  .slice(1)
  .map((line) => {
    const [path, size, sha256, repo, commit, sourcePath, licence] = line.split('\t');
    return { path: path!, size: Number(size), sha256: sha256!, repo: repo!, commit: commit!, sourcePath: sourcePath!, licence: licence! };
  });
const upstreamRows = rows.filter((r) => r.licence !== 'derived');

describe('the repository is self-contained', () => {
  // Code that names the old fixture home outside the repository, or any absolute /work path.
  // Prose in PROVENANCE.md says where the files came from; it is the one file not scanned.
  const FORBIDDEN: readonly [RegExp, string][] = [
    [/\.\.\/shared\b/, '../shared'],
    [/\/work\/(shared|main)\b/, 'an absolute /work path'],
    [/shared\/fixtures/, 'shared/fixtures'],
    [/['"]shared['"]\s*,\s*['"]fixtures['"]/, "a join of 'shared', 'fixtures'"],
    [/['"]\.\.['"]\s*,\s*['"]shared['"]/, "a join of '..', 'shared'"],
  ];
  const SELF = 'test/self-contained.test.ts';
  const scanned = ['test', 'scripts', 'bench', 'python', 'src', '.ci']
    .filter((d) => existsSync(join(ROOT, d)))
    .flatMap((d) =>
      filesUnder(join(ROOT, d), (rel) => ['node_modules', '__pycache__', '.work', '.cache', 'fixtures/upstream', 'fixtures/licenses'].some((s) => rel === s || rel.endsWith(`/${s}`)))
        .map((rel) => `${d}/${rel}`),
    )
    .filter((rel) => rel !== SELF && rel !== 'test/fixtures/PROVENANCE.md');

  it('no source, test, script or bench file reads from outside the repository', () => {
    expect(scanned.length).toBeGreaterThan(100);
    const offenders: string[] = [];
    for (const rel of scanned) {
      const bytes = readFileSync(join(ROOT, rel));
      if (bytes.includes(0)) continue; // binary fixtures made by this project
      const lines = bytes.toString('utf8').split('\n');
      lines.forEach((line, i) => {
        for (const [pattern, what] of FORBIDDEN) if (pattern.test(line)) offenders.push(`${rel}:${i + 1} names ${what}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });

  it('catches the paths it is meant to catch', () => {
    const hits = (line: string) => FORBIDDEN.some(([p]) => p.test(line));
    expect(hits("const FIXTURES = '/work/shared/fixtures';")).toBe(true);
    expect(hits("resolve(PROJECT, '../shared/fixtures/onnx/node')")).toBe(true);
    expect(hits("join(ROOT, '..', 'shared', 'fixtures')")).toBe(true);
    expect(hits("new URL(`../../../../shared/fixtures/tfjs/${relative}`, import.meta.url)")).toBe(true);
    expect(hits("join(ROOT, 'test', 'fixtures', 'upstream')")).toBe(false);
  });

  it('every upstream copy is the file MANIFEST.tsv lists, byte for byte, and nothing else is there', () => {
    expect(upstreamRows.length).toBeGreaterThan(8000);
    const problems: string[] = [];
    for (const row of rows) {
      const file = join(FIXTURES, row.path);
      if (!existsSync(file)) {
        problems.push(`${row.path}: missing`);
        continue;
      }
      if (statSync(file).size !== row.size) problems.push(`${row.path}: ${statSync(file).size} bytes, the manifest says ${row.size}`);
      else if (createHash('sha256').update(readFileSync(file)).digest('hex') !== row.sha256) problems.push(`${row.path}: sha256 differs from the manifest`);
    }
    const listed = new Set(rows.map((r) => r.path));
    for (const rel of filesUnder(FIXTURES)) if (rel !== 'MANIFEST.tsv' && !listed.has(rel)) problems.push(`${rel}: not in MANIFEST.tsv`);
    expect(problems).toEqual([]);
  });

  it('PROVENANCE.md names every upstream project, commit and licence, and its licence texts are here', () => {
    const problems: string[] = [];
    for (const repo of new Set(upstreamRows.map((r) => r.repo))) if (!PROVENANCE.includes(repo)) problems.push(`project ${repo}`);
    for (const commit of new Set(upstreamRows.map((r) => r.commit))) if (!PROVENANCE.includes(commit)) problems.push(`commit ${commit}`);
    for (const dir of new Set(rows.map((r) => r.path.split('/')[0]!))) {
      if (!dir.includes('.') && !PROVENANCE.includes(`\`${dir}/\``)) problems.push(`directory ${dir}/`);
    }
    for (const project of new Set(upstreamRows.map((r) => r.path.split('/')[0]!))) {
      const texts = join(FIXTURE_DIR, 'licenses', project);
      if (!existsSync(texts) || readdirSync(texts).length === 0) problems.push(`licence text for ${project} (test/fixtures/licenses/${project}/)`);
    }
    expect(problems).toEqual([]);
  });

  it('every repository path PROVENANCE.md names exists', () => {
    // Literal paths only: `test/fixtures/upstream/<project>` is a pattern, not a path.
    const named = [...PROVENANCE.matchAll(/`(test\/[^`\s<>*{}]+)`/g)].map((m) => m[1]!.replace(/\/$/, ''));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });
});
