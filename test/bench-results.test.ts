import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, no declarations
import { marked, replaceSections, sectionText, table, tableRows } from '../bench/harness.mjs';

/**
 * `BENCH_SECTIONS=a,b npm run bench` replaces those sections of bench/RESULTS.md in place: the
 * text surgery must touch only the named sections, in files written before the markers existed
 * (found by heading) and after (found by marker), and the summary tables must read back.
 */
const replace = replaceSections as (results: string, sections: Array<{ name: string; text: string }>) => string;
const section = sectionText as (results: string, name: string) => string | undefined;

const OLD = [
  '# modelbridge benchmarks',
  '',
  '## Targets',
  '',
  '| target | measured | goal | met |',
  '| --- | --- | --- | --- |',
  '| OR gate | 3.56 us | <= 4 us | yes |',
  '',
  '## 1. safetensors: 1024 MiB synthetic bundle',
  '',
  'safetensors numbers',
  '',
  '## 5. SavedModel -> TF.js graph model: 1 GiB SavedModel',
  '',
  'tfjs numbers',
  '',
  '## 6. SavedModel (TensorBundle) -> safetensors: the same 1 GiB SavedModel',
  '',
  'more tensorflow numbers',
  '',
  '## 9. something else',
  '',
  'untouched',
  '',
].join('\n');

describe('bench/RESULTS.md sections', () => {
  it('replaces a section of a file from before the markers by its headings, up to the next section', () => {
    const text = '## 5. SavedModel -> TF.js graph model: 2 GiB SavedModel\n\nnew tfjs\n\n## 6. SavedModel (TensorBundle) -> safetensors: the same 2 GiB SavedModel\n\nnew st';
    const out = replace(OLD, [{ name: 'tensorflow', text }]);
    expect(out).not.toContain('tfjs numbers');
    expect(out).not.toContain('more tensorflow numbers');
    expect(out).toContain('safetensors numbers');
    expect(out).toContain('## 9. something else\n\nuntouched');
    expect(section(out, 'tensorflow')).toBe(text);
    expect(out.indexOf('new st')).toBeLessThan(out.indexOf('## 9.'));
  });

  it('replaces a marked section and only it, and appends one the file lacks', () => {
    const first = replace(OLD, [{ name: 'safetensors', text: '## 1. safetensors: 1 GiB\n\nround one' }, { name: 'formats', text: '## Newer formats\n\nformats one' }]);
    expect(section(first, 'formats')).toBe('## Newer formats\n\nformats one');
    expect(first.trimEnd().endsWith(marked('formats', '## Newer formats\n\nformats one'))).toBe(true);
    const second = replace(first, [{ name: 'safetensors', text: '## 1. safetensors: 1 GiB\n\nround two' }]);
    expect(section(second, 'safetensors')).toBe('## 1. safetensors: 1 GiB\n\nround two');
    expect(second).not.toContain('round one');
    expect(second).not.toContain('safetensors numbers');
    // everything else is byte for byte as before
    expect(second.replace('round two', 'round one')).toBe(first);
  });

  it('reads summary rows back, with a section column or without (older files), escaped pipes included', () => {
    const rows = [['formats', 'issue 15: a | b', 'fails: x', '-', '**NO**']];
    expect(tableRows(table(['section', 'target', 'measured', 'goal', 'met'], rows))).toEqual(rows);
    expect(tableRows(OLD.split('\n## 1.')[0])).toEqual([['-', 'OR gate', '3.56 us', '<= 4 us', 'yes']]);
  });
});
