/**
 * Verified streaming: bao-compatible encoding and decoding of byte ranges of a value against
 * its BLAKE3 root, at any chunk-group size (dstore uses 16 KiB groups). See `docs/PROTOCOL.md`.
 */
export { encode, outboard, encodeRange, encodeRangeSync, encodedRangeLength } from './encode.js'
export type { EncodeOptions, Encoded } from './encode.js'
export { decodeRange, decodeWhole, StreamVerificationError } from './decode.js'
export type { DecodeOptions, DecodedRange, StreamFailure } from './decode.js'
export { DEFAULT_BATCH_BYTES, planRange, checkRange, encodedLength, parentCount, parentOffset, streamItems, MAX_SIZE, MAX_GROUP_LOG } from './range.js'
export type { ByteRange, RangePlan, StreamItem, ParentItem, GroupItem } from './range.js'
