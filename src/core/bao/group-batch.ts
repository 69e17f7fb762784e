/**
 * The decoder's pending group buffer: the data of groups that have arrived but are not verified
 * yet, each with the chaining value its parent said it must have. Verifying them together lets
 * whole groups be hashed in one `groupCVs` call (the hot loop of every transfer).
 *
 * Invariants:
 * - the pending groups are consecutive (stream order is value order for groups), all whole
 *   (`groupLen` bytes) except maybe the value's final group, which is always the last of them;
 * - their data lies at `[pendPos, outPos)` of `out`; a group being written (not closed yet)
 *   follows at `outPos`;
 * - bytes of `out` before `pendPos` have been verified (and maybe handed out): they are never
 *   written again, so views of them stay valid. A new `out` is taken when the next group does not
 *   fit: a fresh buffer, or the next slice of the caller's `target` at the group's offset.
 */
import { blake3, OUT_LEN } from '../blake3/index.js'
import { freshBytes, prefault } from '../prefault.js'
import type { RangePlan } from './range.js'

const EMPTY: Uint8Array = new Uint8Array(0)

/** Whether the 32-byte CVs at `a[aOff]` and `b[bOff]` are equal (in constant time). */
export function equalCV (a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  let diff = 0
  for (let i = 0; i < OUT_LEN; i++) diff |= a[aOff + i] ^ b[bOff + i]
  return diff === 0
}

/** What {@link GroupBatch.verify} found. */
export interface BatchResult {
  /** The verified part of the caller's range (a view of the batch buffer); empty when none. */
  bytes: Uint8Array
  /** Index of the first group that failed, if one did: nothing from it or after it is in `bytes`. */
  bad: number | undefined
  /** The value's final group was among the verified ones, which authenticates the size. */
  final: boolean
}

export class GroupBatch {
  /** Most groups verified at once. */
  private readonly capacity: number
  private readonly groupLen: number
  /** Value offset where the next group's data starts. */
  private nextStart: number
  /** End (in the value) of the last selected group: no buffer is taken past it. */
  private readonly dataEnd: number
  private out: Uint8Array = EMPTY
  /** Write position in `out`. */
  private outPos = 0
  /** Position in `out` of the first pending group. */
  private pendPos = 0
  /** Index of the first pending group. */
  private pendFirst = 0
  /** Number of pending (closed, unverified) groups. */
  private pendCount = 0
  /** Length and ROOT flag of the last pending group (only the final group differs). */
  private lastLength = 0
  private lastIsRoot = false
  /** The pending groups' expected CVs, and their computed ones. */
  private readonly expected: Uint8Array
  private readonly computed: Uint8Array

  /**
   * @param batchBytes bytes of whole groups to collect before verifying (at least one group;
   *   never more groups than the plan selects, so a huge value costs nothing for a small range)
   * @param target a buffer of the value's size to write group data into, at its value offsets
   */
  constructor (private readonly plan: RangePlan, batchBytes: number, private readonly target: Uint8Array | undefined) {
    this.groupLen = plan.groupLen
    this.capacity = Math.max(1, Math.min(Math.floor(batchBytes / plan.groupLen), plan.lastGroup - plan.firstGroup + 1))
    this.nextStart = plan.firstGroup * plan.groupLen
    this.dataEnd = Math.min(plan.size, (plan.lastGroup + 1) * plan.groupLen)
    this.expected = new Uint8Array(this.capacity * OUT_LEN)
    this.computed = new Uint8Array(this.capacity * OUT_LEN)
  }

  /** Number of groups waiting to be verified. */
  get pending (): number {
    return this.pendCount
  }

  /** Whether the pending groups must be verified before a group of `length` bytes can be opened. */
  full (length: number): boolean {
    return this.pendCount === this.capacity || (this.pendCount > 0 && this.out.length - this.outPos < length)
  }

  /** Makes room for the next group, of `length` bytes. Call only when not {@link full}. */
  open (length: number): void {
    if (this.out.length - this.outPos >= length) return
    // Nothing is pending (see `full`), so the old buffer is done with.
    const n = Math.min(this.capacity * this.groupLen, this.dataEnd - this.nextStart)
    this.out = this.target !== undefined ? this.target.subarray(this.nextStart, this.nextStart + n) : freshBytes(n)
    // Its pages are backed in one call, not faulted in a 4 KiB page at a time by the copies
    // (where it is memory dstore allocated: a fresh batch buffer, or a fresh value buffer).
    prefault(this.out)
    this.outPos = 0
    this.pendPos = 0
  }

  /** Appends `src[from, to)` to the open group's data. */
  write (src: Uint8Array, from: number, to: number): void {
    this.out.set(src.subarray(from, to), this.outPos)
    this.outPos += to - from
  }

  /**
   * Closes the open group (`index`, `length` bytes, all written) as pending, with its expected
   * CV: `cvs[at, at + 32)`, copied.
   */
  close (index: number, length: number, isRoot: boolean, cvs: Uint8Array, at: number): void {
    if (this.pendCount === 0) this.pendFirst = index
    this.expected.set(cvs.subarray(at, at + OUT_LEN), this.pendCount * OUT_LEN)
    this.pendCount++
    this.lastLength = length
    this.lastIsRoot = isRoot
    this.nextStart += length
  }

  /**
   * Verifies the pending groups, in order, and returns the part of the caller's range they hold,
   * up to the first group that fails. They are no longer pending afterwards, whatever the outcome.
   */
  verify (): BatchResult {
    const { plan, groupLen, pendCount: count, pendFirst: first } = this
    if (count === 0) return { bytes: EMPTY, bad: undefined, final: false }
    // Only the value's final group can be short, or (for a single-group value) the root.
    const lastSpecial = this.lastIsRoot || this.lastLength !== groupLen
    const whole = lastSpecial ? count - 1 : count
    let good = count // groups that verified, from the first pending one
    if (whole > 0) {
      blake3.groupCVs(this.out.subarray(this.pendPos, this.pendPos + whole * groupLen), first * 2 ** plan.groupLog, plan.groupLog, this.computed, 0)
      for (let i = 0; i < whole; i++) {
        if (!equalCV(this.computed, i * OUT_LEN, this.expected, i * OUT_LEN)) { good = i; break }
      }
    }
    if (good === count && lastSpecial) {
      const at = this.pendPos + whole * groupLen
      blake3.subtreeCV(this.out.subarray(at, at + this.lastLength), (first + whole) * 2 ** plan.groupLog, this.lastIsRoot, this.computed, 0)
      if (!equalCV(this.computed, 0, this.expected, whole * OUT_LEN)) good = whole
    }
    // Clip the verified groups to the range the caller asked for.
    const valueStart = first * groupLen
    const valueEnd = valueStart + (count - 1) * groupLen + this.lastLength
    const goodEnd = good === count ? valueEnd : valueStart + good * groupLen
    const from = Math.max(valueStart, plan.emitStart)
    const to = Math.min(goodEnd, plan.emitEnd)
    const bytes = to > from ? this.out.subarray(this.pendPos + (from - valueStart), this.pendPos + (to - valueStart)) : EMPTY
    const bad = good === count ? undefined : first + good
    const final = bad === undefined && first + count - 1 === plan.groups - 1
    this.pendPos += valueEnd - valueStart
    this.pendFirst += count
    this.pendCount = 0
    return { bytes, bad, final }
  }
}
