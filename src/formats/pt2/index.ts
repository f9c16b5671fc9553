/** torch.export programs (.pt2). */
export { pt2Format, looksLikePt2 } from './format.js';
export { readPt2, programToModel, PT2_METADATA } from './reader.js';
export { openPt2, ARCHIVE_VERSIONS, SCHEMA_MAJORS, type Pt2Archive } from './archive.js';
export { ATEN_OPS, PT2_IMPORT_IR } from './ops.js';
export { writePt2 } from './writer.js';
