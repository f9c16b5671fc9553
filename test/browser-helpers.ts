import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';

/** Shared by the browser tests: where Chromium is, and the loopback static server. */
export const CHROMIUM = process.env['MODELBRIDGE_CHROMIUM'] ?? '/usr/bin/chromium';

export function chromiumPresent(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env['CI'] === 'true') throw new Error(`no Chromium at ${CHROMIUM}: scripts/browser-env.sh installs Debian's chromium`);
  console.warn(`skipping the browser tests: no Chromium at ${CHROMIUM} (scripts/browser-env.sh installs it; under CI=true this fails)`);
  return false;
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/**
 * The page's folder over HTTP on 127.0.0.1, cross-origin isolated (COOP/COEP, so shared memory is
 * allowed: the WebAssembly kernel's and its Web Workers') unless `isolated` is false.
 */
export function serve(root: string, options: { isolated?: boolean } = {}): Promise<{ server: Server; origin: string }> {
  const isolation = options.isolated === false ? {} : { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...isolation });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

