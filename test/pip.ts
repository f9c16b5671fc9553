import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A throwaway virtualenv that sees the peers venv's packages (torch, safetensors) through a .pth
 * file, for proving that `pip install` of the Python helper works without touching the peers venv.
 * Installs run with --no-index and --no-build-isolation: no network, the venv's own setuptools.
 */
export function makeVenv(peerPython: string, dir: string): string {
  const venv = join(dir, 'venv');
  const made = spawnSync(peerPython, ['-m', 'venv', venv], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`python -m venv failed: ${made.stderr}`);
  const peersSite = spawnSync(peerPython, ['-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], { encoding: 'utf8' }).stdout.trim();
  const lib = join(venv, 'lib');
  const site = join(lib, readdirSync(lib).find((d) => d.startsWith('python'))!, 'site-packages');
  writeFileSync(join(site, 'peers.pth'), `${peersSite}\n`);
  return join(venv, 'bin', 'python');
}

export function pipInstall(python: string, path: string): { code: number; output: string } {
  const r = spawnSync(python, ['-m', 'pip', 'install', '--no-index', '--no-build-isolation', '--no-deps', '--disable-pip-version-check', '-q', path], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
