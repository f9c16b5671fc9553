import * as childProcess from 'node:child_process'; // lazy in the CLI bundle
import type { ChildProcess } from 'node:child_process';
import { setTempWatcher } from '../core/atomic.js';

/**
 * Temporaries removed when the CLI is interrupted (SIGINT, SIGTERM, SIGHUP, even SIGKILL).
 *
 * Conversions run synchronously, so a JavaScript signal handler would only run once the
 * conversion is over (and would make Ctrl-C wait for it). Instead a small watcher process holds
 * the read end of a pipe from this one: each directory where this process makes a temporary is
 * sent to it as a line, and when the pipe closes (this process exited, however it ended) it
 * removes that directory's entries carrying this process's temporary mark. A run that ends
 * normally has none left, so the watcher then finds nothing. It runs in its own process group,
 * so the terminal's Ctrl-C does not reach it. The next run's sweep (sweepLeftovers) stays as the
 * fallback where the watcher could not start.
 */
const WATCHER = `
const { readdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const pid = process.argv[1];
const mark = new RegExp('^\\\\..*\\\\.modelbridge-tmp-' + pid + '-');
const dirs = new Set();
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  const lines = (buffered + d).split('\\n');
  buffered = lines.pop();
  for (const l of lines) if (l) dirs.add(l);
});
process.stdin.on('end', () => {
  for (const dir of dirs) {
    let entries = [];
    try { entries = readdirSync(dir); } catch { continue; }
    for (const e of entries) if (mark.test(e)) { try { rmSync(join(dir, e), { recursive: true, force: true }); } catch {} }
  }
});
`;

let watcher: ChildProcess | undefined;
const sent = new Set<string>();

function send(dir: string): void {
  if (sent.has(dir) || dir.includes('\n')) return;
  if (!watcher) {
    try {
      watcher = childProcess.spawn(process.execPath, ['-e', WATCHER, String(process.pid)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    } catch {
      return;
    }
    watcher.on('error', () => undefined);
    watcher.stdin?.on('error', () => undefined);
    // Neither the child nor its pipe keeps this process alive.
    watcher.unref();
    (watcher.stdin as { unref?: () => void } | null)?.unref?.();
  }
  sent.add(dir);
  // libuv writes to an idle pipe at once, so the line arrives even while a conversion keeps
  // this process busy.
  watcher.stdin?.write(`${dir}\n`);
}

/** Starts watching for the CLI: every directory given a temporary from now on is registered. */
export function guardTemporaries(): void {
  setTempWatcher(send);
}
