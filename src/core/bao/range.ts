/**
 * How a byte range of a value maps onto the verified-streaming tree (see `docs/PROTOCOL.md`,
 * "Verified streaming").
 *
 * The rules are bao's slice rules, applied to chunk groups instead of chunks:
 * - a range of length 0 selects the group that contains `offset` (it is verified, nothing is
 *   yielded);
 * - a range starting at or past the end of the value selects the value's final group (so the
 *   length gets authenticated), and nothing is yielded;
 * - a range running past the end is clipped to the end;
 * - the stream carries the 8-byte header, then, in pre-order, every parent node whose subtree
 *   overlaps the selected groups, and the whole data of every selected group.
 */
import { OutOfRangeError } from '../errors.js'
import { groupCount, groupLength, leftGroups, HEADER_LEN, PARENT_LEN } from '../tree.js'

/** A byte range of a value. `length` may be `Infinity` (to the end). */
export interface ByteRange {
  offset: number
  length: number
}

/** Bytes the encoder reads (and yields) and the decoder verifies per batch: 1 MiB. */
export const DEFAULT_BATCH_BYTES = 1 << 20
/** Largest value size dstore accepts in a header (JavaScript's exact integers). */
export const MAX_SIZE = Number.MAX_SAFE_INTEGER

/** Largest chunk-group size accepted: 2^20 chunks (1 GiB groups). */
export const MAX_GROUP_LOG = 20

/** Where a byte range lands in a value of a known size. */
export interface RangePlan {
  /** Size of the value (from the header: trusted only once the final group is verified). */
  size: number
  groupLog: number
  /** Bytes per group. */
  groupLen: number
  /** Number of groups in the value (at least 1). */
  groups: number
  /** First selected group. */
  firstGroup: number
  /** Last selected group (inclusive). */
  lastGroup: number
  /** First byte handed to the caller. */
  emitStart: number
  /** End (exclusive) of the bytes handed to the caller; equals `emitStart` when nothing is. */
  emitEnd: number
  /** Whether the selection includes the final group, which authenticates `size`. */
  includesFinalGroup: boolean
}

/** Checks a requested range. @throws {OutOfRangeError} for negative, fractional or unsafe numbers. */
export function checkRange (range: ByteRange): void {
  const { offset, length } = range
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OutOfRangeError(`invalid range offset ${String(offset)}`)
  if (length !== Infinity && (!Number.isSafeInteger(length) || length < 0)) throw new OutOfRangeError(`invalid range length ${String(length)}`)
}

/**
 * Checks an optional integer option (`batchBytes`, `maxSize`): undefined, or a safe integer of at
 * least `min`. @throws {OutOfRangeError} otherwise (NaN, Infinity, fractions, negatives).
 */
export function checkIntegerOption (name: string, value: number | undefined, min: number): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) {
    throw new OutOfRangeError(`invalid ${name} ${String(value)}: expected an integer of at least ${min}`)
  }
}

/** Maps `range` onto a value of `size` bytes at chunk-group size `2^groupLog` chunks. */
export function planRange (size: number, range: ByteRange, groupLog: number): RangePlan {
  checkRange(range)
  if (!Number.isSafeInteger(size) || size < 0) throw new OutOfRangeError(`invalid size ${String(size)}`)
  if (!Number.isInteger(groupLog) || groupLog < 0 || groupLog > MAX_GROUP_LOG) throw new OutOfRangeError(`invalid groupLog ${String(groupLog)}`)
  const groupLen = groupLength(groupLog)
  const groups = groupCount(size, groupLog)
  const { offset, length } = range
  // bao: a zero-length request still selects (and verifies) the group holding `offset`.
  const end = offset + Math.max(length, 1) // may exceed 2^53 or be Infinity: only compared
  const emitStart = Math.min(offset, size)
  const emitEnd = Math.max(emitStart, Math.min(offset + length, size))
  // bao: a start at or past the end is moved to the last byte, so the final group is verified.
  const start = offset >= size ? Math.max(size - 1, 0) : offset
  const firstGroup = Math.floor(start / groupLen)
  const lastGroup = size === 0 ? 0 : Math.min(groups - 1, Math.ceil(Math.min(end, size) / groupLen) - 1)
  return {
    size,
    groupLog,
    groupLen,
    groups,
    firstGroup,
    lastGroup,
    emitStart,
    emitEnd,
    includesFinalGroup: lastGroup === groups - 1
  }
}

/** Byte offset of the parent node with pre-order index `index` in the outboard. */
export function parentOffset (index: number): number {
  return HEADER_LEN + PARENT_LEN * index
}

/** Number of bytes in group `index` of the plan's value. */
export function groupBytes (plan: RangePlan, index: number): number {
  return Math.min(plan.groupLen, plan.size - index * plan.groupLen)
}

/** Number of parent nodes the stream for `plan` carries. O(log n). */
export function parentCount (plan: RangePlan): number {
  const { firstGroup: g0, lastGroup: g1 } = plan
  const count = (lo: number, hi: number): number => {
    if (hi - lo < 2 || hi <= g0 || lo > g1) return 0
    if (lo >= g0 && hi - 1 <= g1) return hi - lo - 1
    const mid = lo + leftGroups(hi - lo)
    return 1 + count(lo, mid) + count(mid, hi)
  }
  return count(0, plan.groups)
}

/** Total bytes of the verified stream for `plan`: header, parents and selected groups' data. */
export function encodedLength (plan: RangePlan): number {
  const dataStart = plan.firstGroup * plan.groupLen
  const dataEnd = Math.min(plan.size, (plan.lastGroup + 1) * plan.groupLen)
  return HEADER_LEN + PARENT_LEN * parentCount(plan) + (dataEnd - dataStart)
}

/** A parent node in the stream. */
export interface ParentItem {
  kind: 'parent'
  /** Pre-order index among all the value's parents: the node is at `parentOffset(index)` in the outboard. */
  index: number
  /** Groups covered: `[lo, hi)`; the left child covers `[lo, mid)`. */
  lo: number
  mid: number
  hi: number
  /** Only the top node is finalised as root. */
  isRoot: boolean
  /** Whether the left / right child is part of the stream (and so follows, in pre-order). */
  left: boolean
  right: boolean
}

/** A group's data in the stream. */
export interface GroupItem {
  kind: 'group'
  /** Group index; its first chunk is `index << groupLog`. */
  index: number
  /** Byte offset of the group in the value. */
  start: number
  /** Bytes in the group (0 only for the empty value). */
  length: number
  /** True when the value is a single group: its CV is the root hash. */
  isRoot: boolean
}

export type StreamItem = ParentItem | GroupItem

/**
 * The stream's nodes, in order (pre-order, skipping subtrees outside the selection). Uses an
 * explicit stack of O(log n) entries; no recursion, no allocation proportional to the value.
 */
export function * streamItems (plan: RangePlan): Generator<StreamItem, void, undefined> {
  const { firstGroup: g0, lastGroup: g1 } = plan
  // Stack of pending nodes: lo, hi, pre-order index of the node's parent slot (if a parent).
  const los: number[] = [0]
  const his: number[] = [plan.groups]
  const idx: number[] = [0]
  while (los.length > 0) {
    const lo = los.pop() as number
    const hi = his.pop() as number
    const index = idx.pop() as number
    const isRoot = lo === 0 && hi === plan.groups
    if (hi - lo === 1) {
      const start = lo * plan.groupLen
      yield { kind: 'group', index: lo, start, length: Math.min(plan.groupLen, plan.size - start), isRoot }
      continue
    }
    const mid = lo + leftGroups(hi - lo)
    const left = mid > g0 // [lo, mid) overlaps [g0, g1]; lo <= g1 holds for any visited node
    const right = mid <= g1 // [mid, hi) overlaps; hi > g0 holds for any visited node
    yield { kind: 'parent', index, lo, mid, hi, isRoot, left, right }
    if (right) { los.push(mid); his.push(hi); idx.push(index + (mid - lo)) }
    if (left) { los.push(lo); his.push(mid); idx.push(index + 1) }
  }
}
