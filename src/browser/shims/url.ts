/** node:url for the browser bundle: file URLs as paths (nothing reads them: there is no file system). */
export function fileURLToPath(url: string | URL): string {
  return new URL(String(url)).pathname;
}

export function pathToFileURL(path: string): URL {
  return new URL(`file://${path}`);
}
