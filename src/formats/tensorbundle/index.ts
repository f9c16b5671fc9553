/** TensorFlow checkpoints (TensorBundle / "V2" format): reading, writing, and the index table. */
export { dtypeToTfCode, tfCodeToDType, tfTypeName } from './dtypes.js';
export { defaultHeader, ENDIANNESS_BIG, ENDIANNESS_LITTLE, type BundleEntry, type BundleHeader, type VersionDef } from './proto.js';
export {
  dataFileName,
  decodeTensorBundle,
  indexFileName,
  LAZY_THRESHOLD,
  parseBundleIndex,
  readTensorBundle,
  type ReadBundleOptions,
  type TensorBundle,
  type TensorCheck,
  verifyTensorBundle,
} from './reader.js';
export { readTable, TableBuilder, type TableEntry, type TableOptions } from './table.js';
export { writeTensorBundle, type WriteBundleOptions } from './writer.js';
