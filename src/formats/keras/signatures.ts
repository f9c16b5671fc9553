/**
 * The first bytes of the two Keras files. Apart from the reader so that format detection, which
 * every command that opens a model runs, does not load the HDF5 reading code.
 */
export const ZIP_SIGNATURE = [0x50, 0x4b, 0x03, 0x04];
export const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
