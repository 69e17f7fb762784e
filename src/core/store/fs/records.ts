/**
 * The index record: what the `index` database holds for each stored value, keyed by its
 * BLAKE3 digest. 10 bytes: kind (1), flags (1), size (u64 little-endian, 8). The `payload`
 * database holds, under the same key, the value's outboard parents, followed by the value's
 * bytes when it is inline (docs/STORAGE.md, "The index").
 */
import { StorageError } from '../../errors.js'

/** The value's bytes are in the `payload` entry, after its outboard parents. */
export const KIND_INLINE = 1
/** The value's bytes are in a data file under blobs/ (see layout.ts). */
export const KIND_FILE = 2
const FLAG_PINNED = 1
const RECORD_LEN = 10

/** One decoded `index` entry. */
export interface IndexRecord {
  kind: typeof KIND_INLINE | typeof KIND_FILE
  pinned: boolean
  size: number
}

/** Encodes a record for the `index` database. */
export function encodeRecord (record: IndexRecord): Buffer {
  const out = Buffer.alloc(RECORD_LEN)
  out[0] = record.kind
  out[1] = record.pinned ? FLAG_PINNED : 0
  out.writeBigUInt64LE(BigInt(record.size), 2)
  return out
}

/** Decodes an `index` entry; StorageError when it is not one. */
export function decodeRecord (value: Uint8Array): IndexRecord {
  if (value.length < RECORD_LEN || (value[0] !== KIND_INLINE && value[0] !== KIND_FILE)) {
    throw new StorageError('Corrupt index record')
  }
  const view = new DataView(value.buffer, value.byteOffset, RECORD_LEN)
  return { kind: value[0], pinned: (value[1] & FLAG_PINNED) !== 0, size: Number(view.getBigUint64(2, true)) }
}
