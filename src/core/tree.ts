/**
 * The BLAKE3 tree of a value, seen at the granularity of chunk groups.
 *
 * A chunk group is `2^groupLog` chunks (dstore uses 16 chunks = 16 KiB, as iroh-blobs does;
 * the bao test vectors use 1 chunk). Groups are the leaves of the verified-streaming tree:
 * because BLAKE3's left subtrees are always a power of two chunks, every parent node above
 * the group level is a real BLAKE3 parent node, and its children split at a group boundary.
 *
 * Layout facts used throughout (n = number of groups, at least 1 even for the empty value):
 * - a node covering `k ≥ 2` groups puts the largest power of two `< k` groups on its left;
 * - there are `n - 1` parent nodes, each 64 bytes (left CV ‖ right CV);
 * - the outboard is an 8-byte little-endian length followed by the parent nodes in pre-order.
 */
import { blake3, CHUNK_LEN, OUT_LEN } from './blake3/index.js'

/** dstore's chunk group: 2^4 chunks = 16 KiB. */
export const DEFAULT_GROUP_LOG = 4
/** Bytes in the outboard and encoding header (the value's length, u64 little-endian). */
export const HEADER_LEN = 8
/** Bytes in a parent node: left CV then right CV. */
export const PARENT_LEN = 2 * OUT_LEN

/** Bytes in a chunk group. */
export function groupLength (groupLog: number): number {
  return CHUNK_LEN * 2 ** groupLog
}

/** Number of leaf groups of a value of `size` bytes (at least 1). */
export function groupCount (size: number, groupLog: number): number {
  return Math.max(1, Math.ceil(size / groupLength(groupLog)))
}

/** Largest power of two strictly below `k` (k ≥ 2): how many groups go left. */
export function leftGroups (k: number): number {
  return 2 ** Math.floor(Math.log2(k - 1))
}

/** Size in bytes of the outboard of a value of `size` bytes: header plus parent nodes. */
export function outboardLength (size: number, groupLog: number): number {
  return HEADER_LEN + PARENT_LEN * (groupCount(size, groupLog) - 1)
}

/** Encodes a length as the 8-byte little-endian header. */
export function encodeHeader (size: number, out = new Uint8Array(HEADER_LEN), offset = 0): Uint8Array {
  const view = new DataView(out.buffer, out.byteOffset + offset, HEADER_LEN)
  view.setBigUint64(0, BigInt(size), true)
  return out
}

/** Decodes the 8-byte little-endian header. Sizes above 2^53 are rejected by the caller. */
export function decodeHeader (bytes: Uint8Array, offset = 0): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_LEN).getBigUint64(0, true)
}

/** What {@link TreeHasher.finalize} returns. */
export interface TreeResult {
  /** BLAKE3 hash of the whole value. */
  root: Uint8Array
  /** Length of the value in bytes. */
  size: number
  /** The outboard (header and pre-order parent nodes), when the hasher was asked to keep it. */
  outboard?: Uint8Array
}

export interface TreeHasherOptions {
  /** log2 of chunks per group; default {@link DEFAULT_GROUP_LOG}. */
  groupLog?: number
  /** Keep the group CVs (32 bytes per group) to build the outboard at the end. */
  outboard?: boolean
}

/**
 * Hashes a value fed in pieces of any size. Without `outboard` it holds one group and a stack of
 * at most 54 CVs, whatever the value's size; with it, also 32 bytes per group (1/512 of the
 * value at 16 KiB groups) to lay out the outboard once the size is known.
 */
export class TreeHasher {
  readonly groupLog: number
  private readonly groupLen: number
  private readonly pending: Uint8Array
  private pendingLen = 0
  /** Groups already hashed (all but the held-back last one). */
  private groups = 0
  private readonly stack: Uint8Array
  private depth = 0
  private leaves: Uint8Array | undefined
  private finished = false
  /**
   * The CV of the last group fed through {@link updateGroupCVs}, not yet merged: it may turn
   * out to be the value's last group, whose merges (up to the root) wait for `finalize`.
   */
  private heldCV: Uint8Array | undefined

  constructor (options: TreeHasherOptions = {}) {
    this.groupLog = options.groupLog ?? DEFAULT_GROUP_LOG
    this.groupLen = groupLength(this.groupLog)
    this.pending = new Uint8Array(this.groupLen)
    this.stack = new Uint8Array(64 * OUT_LEN)
    this.leaves = options.outboard === true ? new Uint8Array(64 * OUT_LEN) : undefined
  }

  /** Bytes fed so far. */
  get size (): number {
    return (this.groups + (this.heldCV !== undefined ? 1 : 0)) * this.groupLen + this.pendingLen
  }

  /** Feeds the next piece of the value. Does not keep a reference to `data`. */
  update (data: Uint8Array): this {
    if (this.finished) throw new Error('TreeHasher already finalized')
    let off = 0
    const len = data.length
    if (len > 0) this.releaseHeld()
    while (off < len) {
      if (this.pendingLen === this.groupLen) {
        // More data follows, so the held-back group is not the last and not the root.
        this.addGroups(this.pending, 1)
        this.pendingLen = 0
      }
      if (this.pendingLen === 0 && len - off > this.groupLen) {
        // Hash whole groups straight from the caller's buffer, always holding back the last one.
        const n = Math.floor((len - off - 1) / this.groupLen)
        this.addGroups(data.subarray(off, off + n * this.groupLen), n)
        off += n * this.groupLen
        continue
      }
      const take = Math.min(this.groupLen - this.pendingLen, len - off)
      this.pending.set(data.subarray(off, off + take), this.pendingLen)
      this.pendingLen += take
      off += take
    }
    return this
  }

  /**
   * Feeds whole groups hashed elsewhere (e.g. by a worker thread): `cvs` holds the chaining
   * values (32 bytes each, in order, none finalised as root) of the next `cvs.length / 32`
   * groups of the value, which must start at a group boundary (everything fed so far is whole
   * groups). The result is the same as feeding those groups' bytes to {@link update}. The
   * first group of a value of more than one group may come this way, but a value made of a
   * single group must be fed as bytes (its root hash cannot be derived from a CV).
   */
  updateGroupCVs (cvs: Uint8Array): this {
    if (this.finished) throw new Error('TreeHasher already finalized')
    if (cvs.length % OUT_LEN !== 0) throw new TypeError('updateGroupCVs needs whole 32-byte CVs')
    const n = cvs.length / OUT_LEN
    if (n === 0) return this
    if (this.pendingLen === this.groupLen) {
      this.addGroups(this.pending, 1)
      this.pendingLen = 0
    }
    if (this.pendingLen !== 0) throw new Error('updateGroupCVs needs the value fed so far to be whole groups')
    this.releaseHeld()
    if (n > 1) this.addCVs(cvs.subarray(0, (n - 1) * OUT_LEN), n - 1)
    this.heldCV = cvs.slice((n - 1) * OUT_LEN)
    return this
  }

  /** Completes the tree. The hasher cannot be used afterwards. */
  finalize (): TreeResult {
    if (this.finished) throw new Error('TreeHasher already finalized')
    if (this.heldCV !== undefined && this.pendingLen === 0) return this.finalizeHeld()
    this.finished = true
    const size = this.size
    const last = this.pending.subarray(0, this.pendingLen)
    if (this.groups === 0) {
      const root = blake3.subtreeCV(last, 0, true)
      return { root, size, outboard: this.leaves != null ? encodeHeader(size) : undefined }
    }
    return this.finishWith(blake3.subtreeCV(last, this.groups * 2 ** this.groupLog, false), size)
  }

  /** Completes the tree from the last group's CV: merges the stack (ROOT on top) and lays out the outboard. */
  private finishWith (lastCV: Uint8Array, size: number): TreeResult {
    if (this.leaves != null) {
      this.ensureLeaves(this.groups + 1)
      this.leaves.set(lastCV, this.groups * OUT_LEN)
    }
    this.push(lastCV)
    while (this.depth > 1) {
      this.depth--
      const root = this.depth === 1
      const left = this.stack.subarray((this.depth - 1) * OUT_LEN, this.depth * OUT_LEN)
      const right = this.stack.subarray(this.depth * OUT_LEN, (this.depth + 1) * OUT_LEN)
      blake3.parentCV(left, right, root, this.stack, (this.depth - 1) * OUT_LEN)
    }
    const root = this.stack.slice(0, OUT_LEN)
    let outboard: Uint8Array | undefined
    if (this.leaves != null) {
      outboard = buildOutboard(this.leaves.subarray(0, (this.groups + 1) * OUT_LEN), size, this.groupLog).outboard
    }
    return { root, size, outboard }
  }

  /** The held CV is not the last group after all: merge it like any other. */
  private releaseHeld (): void {
    if (this.heldCV === undefined) return
    const cv = this.heldCV
    this.heldCV = undefined
    this.addCVs(cv, 1)
  }

  /** Finalize when the last group came as a CV (see {@link updateGroupCVs}). */
  private finalizeHeld (): TreeResult {
    const last = this.heldCV as Uint8Array
    if (this.groups === 0) throw new Error('A value of a single group must be fed as bytes')
    this.finished = true
    return this.finishWith(last, this.size)
  }

  private addGroups (data: Uint8Array, n: number): void {
    const cvs = n === 1 ? scratchCV : new Uint8Array(n * OUT_LEN)
    blake3.groupCVs(data, this.groups * 2 ** this.groupLog, this.groupLog, cvs, 0)
    this.addCVs(cvs, n)
  }

  /** Adds `n` group CVs known not to include the value's last group. */
  private addCVs (cvs: Uint8Array, n: number): void {
    if (this.leaves != null) {
      this.ensureLeaves(this.groups + n)
      this.leaves.set(cvs, this.groups * OUT_LEN)
    }
    for (let i = 0; i < n; i++) {
      this.push(cvs.subarray(i * OUT_LEN, (i + 1) * OUT_LEN))
      this.groups++
      // A complete subtree of 2^k groups closes when the group count gains k trailing zeros.
      // Safe to merge now: these groups are known not to be the last, so none of these is the root.
      // (Plain arithmetic: `&` and `>>>` would truncate counts of 2^32 groups and more.)
      let done = this.groups
      while (done % 2 === 0) {
        this.depth--
        const left = this.stack.subarray((this.depth - 1) * OUT_LEN, this.depth * OUT_LEN)
        const right = this.stack.subarray(this.depth * OUT_LEN, (this.depth + 1) * OUT_LEN)
        blake3.parentCV(left, right, false, this.stack, (this.depth - 1) * OUT_LEN)
        done /= 2
      }
    }
  }

  private push (cv: Uint8Array): void {
    this.stack.set(cv, this.depth * OUT_LEN)
    this.depth++
  }

  private ensureLeaves (groups: number): void {
    const need = groups * OUT_LEN
    if (this.leaves != null && this.leaves.length < need) {
      const bigger = new Uint8Array(Math.max(need, this.leaves.length * 2))
      bigger.set(this.leaves)
      this.leaves = bigger
    }
  }
}

const scratchCV = new Uint8Array(OUT_LEN)

/**
 * Builds the pre-order outboard of a value from its group CVs (32 bytes each, in order) and
 * returns it with the root hash. With a single group there are no parents; the root cannot be
 * derived from a non-root CV, so `root` is then undefined.
 */
export function buildOutboard (leaves: Uint8Array, size: number, groupLog: number): { outboard: Uint8Array, root?: Uint8Array } {
  const n = groupCount(size, groupLog)
  if (leaves.length !== n * OUT_LEN) throw new Error(`expected ${n} group CVs, got ${leaves.length / OUT_LEN}`)
  const outboard = new Uint8Array(outboardLength(size, groupLog))
  encodeHeader(size, outboard)
  if (n === 1) return { outboard }
  let cursor = HEADER_LEN
  const node = (lo: number, hi: number, isRoot: boolean, out: Uint8Array, outOff: number): void => {
    if (hi - lo === 1) {
      out.set(leaves.subarray(lo * OUT_LEN, hi * OUT_LEN), outOff)
      return
    }
    const slot = cursor
    cursor += PARENT_LEN
    const mid = lo + leftGroups(hi - lo)
    node(lo, mid, false, outboard, slot)
    node(mid, hi, false, outboard, slot + OUT_LEN)
    blake3.parentCV(outboard.subarray(slot, slot + OUT_LEN), outboard.subarray(slot + OUT_LEN, slot + PARENT_LEN), isRoot, out, outOff)
  }
  const root = new Uint8Array(OUT_LEN)
  node(0, n, true, root, 0)
  return { outboard, root }
}
