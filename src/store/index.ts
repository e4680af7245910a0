/** Persistence primitives used by the domain folders. */
export { writeFileAtomic, fsyncDir } from "./atomic-file.ts";
export { StoredRecord, RecordDir } from "./record-file.ts";
export { NameIndex } from "./names.ts";
export { IdIndex } from "./id-index.ts";
export { bumpStoreGeneration, storeGeneration } from "./generation.ts";
