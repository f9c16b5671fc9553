import type { Model } from '../../core/model.js';
import type { FormatHandler, Probe } from '../format.js';
import * as zip from '../pytorch/zip.js'; // lazy in the CLI bundle
import * as reader from './reader.js'; // lazy in the CLI bundle
import { HDF5_SIGNATURE, ZIP_SIGNATURE } from './signatures.js';
import * as writer from './writer.js'; // lazy in the CLI bundle

/**
 * Keras models. `keras` is the Keras 3 archive (.keras: a zip of config.json, metadata.json and
 * model.weights.h5), read and written; `h5` is the legacy HDF5 model file of tf.keras and Keras 2
 * (model.save('m.h5')), read, and written as Keras 3's legacy saving writes it. Both read through one reader (reader.ts), which tells them apart by
 * their bytes.
 */

/** Names Keras's saving_lib puts in an archive; the first of them opens a .keras file. */
const KERAS_MEMBERS = ['metadata.json', 'config.json', 'model.weights.h5', 'model.weights.npz'];

function startsWith(head: Uint8Array, signature: readonly number[]): boolean {
  return head.byteLength >= signature.length && signature.every((b, i) => head[i] === b);
}

/**
 * A zip holding config.json at its root. The first local header's name decides when the
 * directory cannot be read (a truncated archive is still Keras's, so its reader can say what is wrong).
 */
export function looksLikeKeras(probe: Probe): boolean {
  if (probe.isDirectory || !startsWith(probe.head, ZIP_SIGNATURE)) return false;
  const head = probe.head;
  if (head.byteLength >= 30) {
    const nameLength = head[26]! | (head[27]! << 8);
    const first = new TextDecoder('latin1').decode(head.subarray(30, Math.min(head.byteLength, 30 + nameLength)));
    if (KERAS_MEMBERS.includes(first)) return true;
  }
  try {
    const archive = zip.openZip(probe.path, { lazy: true });
    return archive.find('config.json') !== undefined && archive.find('data.pkl') === undefined;
  } catch {
    return probe.path.toLowerCase().endsWith('.keras');
  }
}

export const kerasFormat: FormatHandler = {
  name: 'keras',
  title: 'Keras 3 model archive (.keras: config.json + model.weights.h5)',
  extensions: ['.keras'],
  detect: looksLikeKeras,
  read(path): Model {
    return reader.readKeras(path);
  },
  write(model, path) {
    return writer.writeKerasArchive(model, path);
  },
};

export const h5Format: FormatHandler = {
  name: 'h5',
  title: 'Keras HDF5 model (tf.keras / Keras 2 / Keras 3 legacy model.save .h5)',
  extensions: ['.h5', '.hdf5'],
  detect: (probe) => !probe.isDirectory && startsWith(probe.head, HDF5_SIGNATURE),
  read(path): Model {
    return reader.readKeras(path);
  },
  write(model, path) {
    return writer.writeKerasArchive(model, path, 'h5');
  },
};
