/** safetensors: reading (single file, in memory or lazily, and sharded), writing and detection. */
export { looksLikeSafetensors } from './detect.js';
export { SAFETENSORS_DTYPES, fromDType, toDType, type SafetensorsDType } from './dtypes.js';
export { MAX_HEADER_SIZE } from './header.js';
export {
  LAZY_THRESHOLD,
  parseSafetensors,
  readSafetensorsFile,
  readSafetensorsIndex,
  type ReadOptions,
  type SafetensorsFile,
} from './reader.js';
export { INDEX_FILE, SINGLE_FILE, shardFileName } from './shards.js';
export { serializeSafetensors, writeSafetensorsFile, writeSafetensorsSharded } from './writer.js';
