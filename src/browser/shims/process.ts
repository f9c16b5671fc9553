/**
 * The `process` global for the browser bundle (esbuild injects it where code names process):
 * no environment variables, so every MODELBRIDGE_* setting takes its default; one process id
 * for the temporary-file names on in-memory volumes.
 */
export const process = {
  env: {} as Record<string, string | undefined>,
  pid: 1,
  platform: 'browser',
  versions: {} as Record<string, string>,
  cwd: (): string => '/',
  kill: (): never => {
    throw new Error('no processes in the browser');
  },
};
