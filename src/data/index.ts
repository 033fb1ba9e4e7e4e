/**
 * The data layer: IDX files, datasets and batching, MNIST-format, image-folder and CSV loaders,
 * shifts, data specs.
 */

export { DataError } from './errors.js';
export {
  encodeIdx,
  isGzip,
  parseIdx,
  readIdx,
  type IdxArray,
  type IdxData,
  type IdxDtype,
} from './idx.js';
export {
  batches,
  channelStats,
  createDataset,
  hasImageTargets,
  imageSize,
  normalize,
  numBatches,
  permutation,
  split,
  subset,
  take,
  targetSize,
  withImageTargets,
  type Batch,
  type BatchOptions,
  type Dataset,
  type DatasetFields,
  type NormalizeOptions,
  type SplitOptions,
} from './dataset.js';
export {
  findIdxFiles,
  loadIdx,
  loadMnist,
  mnistDataDir,
  type IdxDirOptions,
  type IdxFiles,
  type MnistOptions,
  type Split,
} from './mnist.js';
export {
  DEFAULT_TEST_FRACTION,
  IMAGE_EXTENSIONS,
  loadFolder,
  sampleIndices,
  splitByClass,
  type FolderOptions,
} from './folder.js';
export { decodeImage, imageToChw, resizeBilinear, type RgbaImage } from './image.js';
export { CSV_TASKS, DEFAULT_LABEL_COLUMN, loadCsv, type CsvOptions, type CsvTask } from './csv.js';
export {
  applyShift,
  gaussianKernel,
  isShiftKind,
  SHIFT_KINDS,
  type ShiftKind,
  type ShiftOptions,
} from './shifts.js';
export {
  DATA_SCHEMES,
  DEFAULT_SHIFT_STRENGTH,
  formatDataSpec,
  IMAGE_TARGETS,
  loadDataset,
  parseDataSpec,
  type CsvSpec,
  type DataScheme,
  type DataSpec,
  type FolderSpec,
  type IdxSpec,
  type ImageTarget,
  type LoadDatasetOptions,
  type MnistSpec,
  type ShiftSpec,
} from './spec.js';
