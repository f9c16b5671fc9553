/** PyTorch checkpoints: reading torch.save / torch.jit.save files without unpickling, writing torch.save files. */
export { pytorchFormat, looksLikePytorch } from './format.js';
export { readPytorchFile, parsePytorch, METADATA_RECORD, type PytorchFile, type PytorchInfo, type PytorchReadOptions } from './reader.js';
export { writePytorchFile, serializePytorch, archiveNameFor, type PytorchWriteOptions } from './writer.js';
export { unpickle, DEFAULT_LIMITS, type PickleLimits, type PickleResolver, type UnpickleOptions } from './pickle.js';
export { torchResolver } from './torch-globals.js';
export { parseZip, openZip, type ZipArchive, type ZipEntry } from './zip.js';
export { ZipWriter } from './zip-writer.js';
export { STATE_DICT_KEYS } from './state-dict.js';
