/**
 * The browser bundle's API in a Web Worker (test/browser.page.test.ts): a File posted in is read
 * with readModel, which there reads it a slice at a time (FileReaderSync), and the OR gate is run.
 */
import { readModel, runModel, Tensor } from '../../src/browser.js';

interface Job {
  readonly file: { readonly size: number; readonly name: string };
}

const scope = globalThis as unknown as { onmessage: (e: { data: Job }) => void; postMessage: (m: unknown) => void; FileReaderSync?: unknown };
scope.onmessage = (e) => {
  void (async () => {
    try {
      const file = e.data.file as unknown as Parameters<typeof readModel>[0];
      const model = await readModel(file, { name: e.data.file.name });
      const y = runModel(model, { x: Tensor.from('float32', [4, 2], [0, 0, 0, 1, 1, 0, 1, 1]) })['y']!.toNumbers();
      scope.postMessage({ y, syncReads: typeof scope.FileReaderSync === 'function' });
    } catch (error) {
      scope.postMessage({ error: String(error) });
    }
  })();
};
