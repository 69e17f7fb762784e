/**
 * The receiving side of verified streaming: checks a stream produced by `encodeRange` against
 * the value's root hash and yields only verified bytes of the requested range.
 *
 * Verification order (see `docs/PROTOCOL.md`, "Verified streaming"):
 * - each parent node is checked as soon as its 64 bytes are in, against the CV its own parent
 *   (or the root hash, with the ROOT flag, for the top node) says it must have;
 * - each group's data is checked against the CV its parent gave, with the group's chunk counter
 *   (and the ROOT flag when the value is a single group), before any of its bytes is yielded.
 *   Whole groups that arrive together (up to `batchBytes`) are hashed in one `groupCVs` call and
 *   compared one by one;
 * - the length header is trusted only when the value's final group has been verified: a wrong
 *   length changes the shape of the tree's right edge or the final group's length, and so fails
 *   there (or ends the stream early, or leaves bytes over).
 */
import { blake3, OUT_LEN } from '../blake3/index.js'
import { AbortableIterator, throwIfAborted } from '../abort.js'
import { OutOfRangeError, TooLargeError, VerificationError } from '../errors.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, PARENT_LEN, decodeHeader } from '../tree.js'
import { MAX_SIZE, checkIntegerOption, planRange, streamItems, type ByteRange } from './range.js'

/** Why a verified stream was rejected. */
export type StreamFailure = 'mismatch' | 'truncated' | 'trailing'

/**
 * A {@link VerificationError} raised by the decoder, with the reason. Its `name` and `code` are
 * those of `VerificationError`, so callers that only branch on those need not know this class.
 */
export class StreamVerificationError extends VerificationError {
  readonly reason: StreamFailure
  constructor (reason: StreamFailure, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}

export interface DecodeOptions {
  /** Reject (with `TooLargeError`) a header announcing more than this many bytes. Default 2^53 - 1. */
  maxSize?: number
  /**
   * Bytes of group data collected before verifying and yielding them (default 1 MiB, rounded
   * to whole groups, at least one). Whatever has fully arrived is verified and yielded anyway
   * whenever the decoder has to wait for the source, so this bounds memory, not latency.
   */
  batchBytes?: number
  /** Called once, with the value's total size, as soon as the final group has been verified. */
  onSize?: (size: number) => void
  /**
   * A buffer of exactly the value's size to decode into. When the stream's header announces
   * that size, group data is written straight into it at its offset in the value, and every
   * yielded piece is a view of it, so the pieces of a whole-value decode tile it and no copy is
   * needed to assemble the value. It then also holds bytes not verified yet (those not yielded):
   * use only what was yielded, and nothing of it after an error. With another size in the
   * header it is ignored.
   */
  target?: Uint8Array
  /**
   * Stops decoding with `AbortError` when aborted, at once even if the source is stalled (it is
   * then asked to stop with `return()`, which is not awaited).
   */
  signal?: AbortSignal
}

/** The decoded bytes, plus the size of the value once it has been authenticated. */
export interface DecodedRange extends AsyncIterable<Uint8Array> {
  /**
   * The value's total size: set once the final group has been verified, which happens for any
   * range that reaches (or starts at or past) the end of the value. Stays undefined for a range
   * that ends before the final group: the stream does not authenticate the size then.
   */
  readonly size: number | undefined
}

const DEFAULT_BATCH_BYTES = 1 << 20
const EMPTY: Uint8Array = new Uint8Array(0)
/** CV stack: the traversal holds at most two pending children per level, 64 levels at most. */
const MAX_STACK = 130

function equalCV (a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  let diff = 0
  for (let i = 0; i < OUT_LEN; i++) diff |= a[aOff + i] ^ b[bOff + i]
  return diff === 0
}

/**
 * Verifies the stream `source` (header, then parents and groups in pre-order, as `encodeRange`
 * sends them for the same `range` and `groupLog`) against `root`, and yields exactly the bytes
 * `[offset, offset + length)` of the value, clipped to its end:
 * - `length` 0 yields nothing (the group holding `offset` is still sent and verified);
 * - `offset` at or past the end yields nothing (the final group is sent and verified, which
 *   authenticates the size: check `size` to tell an empty result from a short value);
 * - a range running past the end yields up to the end.
 *
 * Pieces of `source` may have any sizes. No byte is yielded before the group holding it has been
 * verified; memory stays at about `batchBytes` plus O(log n) CVs whatever the value's size.
 *
 * Yielded arrays are views into buffers of about `batchBytes` that the decoder never writes
 * again: callers may keep them (keeping one keeps its whole buffer alive).
 *
 * @throws {VerificationError} (a {@link StreamVerificationError}) at the first node that does not
 *   match (`reason` 'mismatch'), when the stream ends early ('truncated') or when bytes follow
 *   the expected end ('trailing').
 * @throws {TooLargeError} when the header announces more than 2^53 - 1 bytes or `maxSize`.
 * @throws {OutOfRangeError} for an invalid range, root, `groupLog`, `maxSize` or `batchBytes`.
 * @throws {AbortError} when `signal` aborts.
 */
export function decodeRange (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, root: Uint8Array, range: ByteRange,
  groupLog: number = DEFAULT_GROUP_LOG, options: DecodeOptions = {}): DecodedRange {
  planRange(0, range, groupLog) // validates the range and groupLog now rather than on first read
  checkIntegerOption('maxSize', options.maxSize, 0)
  checkIntegerOption('batchBytes', options.batchBytes, 1)
  if (!(root instanceof Uint8Array) || root.length !== OUT_LEN) throw new OutOfRangeError('root must be 32 bytes')
  return new RangeDecoder(source, root.slice(), range, groupLog, options)
}

class RangeDecoder implements DecodedRange {
  size: number | undefined
  private started = false

  constructor (
    private readonly source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    private readonly root: Uint8Array,
    private readonly range: ByteRange,
    private readonly groupLog: number,
    private readonly options: DecodeOptions
  ) {}

  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    if (this.started) throw new Error('decodeRange can be iterated only once')
    this.started = true
    return this.run()
  }

  private async * run (): AsyncGenerator<Uint8Array, void, undefined> {
    const { signal, onSize } = this.options
    const maxSize = Math.min(this.options.maxSize ?? MAX_SIZE, MAX_SIZE)
    // An abort must not wait for a stalled source, and must not keep pieces reachable.
    const it = new AbortableIterator<Uint8Array>(this.source, signal)
    let finished = false

    // The current piece of the source and our position in it.
    let chunk: Uint8Array = EMPTY
    let pos = 0
    /** Loads the next non-empty piece; false at the end of the source. */
    const pull = async (): Promise<boolean> => {
      while (true) {
        throwIfAborted(signal)
        const r = await it.next()
        if (r.done === true) { finished = true; return false }
        if (!(r.value instanceof Uint8Array)) throw new TypeError('verified stream pieces must be Uint8Arrays')
        if (r.value.length > 0) { chunk = r.value; pos = 0; return true }
      }
    }

    try {
      // --- header ---
      const header = new Uint8Array(HEADER_LEN)
      let got = 0
      while (got < HEADER_LEN) {
        if (pos === chunk.length && !(await pull())) throw new StreamVerificationError('truncated', `stream ended after ${got} of ${HEADER_LEN} header bytes`)
        const take = Math.min(HEADER_LEN - got, chunk.length - pos)
        header.set(chunk.subarray(pos, pos + take), got)
        got += take
        pos += take
      }
      const claimed = decodeHeader(header)
      if (claimed > BigInt(maxSize)) throw new TooLargeError(`stream announces ${claimed} bytes, more than the ${maxSize} allowed`)
      const plan = planRange(Number(claimed), this.range, this.groupLog)
      const { groupLen, emitStart, emitEnd } = plan
      const target = this.options.target?.length === plan.size ? this.options.target : undefined

      // --- expected CVs: a stack, top at depth - 1 ---
      const stack = new Uint8Array(MAX_STACK * OUT_LEN)
      stack.set(this.root, 0)
      let depth = 1
      const nodeBuf = new Uint8Array(PARENT_LEN)
      const scratch = new Uint8Array(OUT_LEN)

      // --- the batch: group data collected into a fresh buffer, verified on flush ---
      const batchGroups = Math.max(1, Math.floor((this.options.batchBytes ?? DEFAULT_BATCH_BYTES) / groupLen))
      const dataEnd = Math.min(plan.size, (plan.lastGroup + 1) * groupLen)
      let nextGroupStart = plan.firstGroup * groupLen // value offset of the next group to arrive
      let out: Uint8Array = EMPTY
      let outPos = 0 // write position in `out`
      let pendPos = 0 // position in `out` of the first unverified group
      let pendFirst = 0 // index of the first unverified group
      let pendCount = 0 // unverified complete groups
      let pendLast: { index: number, length: number, isRoot: boolean } | undefined
      const expected = new Uint8Array(batchGroups * OUT_LEN) // their expected CVs
      const computed = new Uint8Array(batchGroups * OUT_LEN)

      const mismatch = (what: string): StreamVerificationError =>
        new StreamVerificationError('mismatch', `${what} does not match its expected chaining value`)

      const groupLog = this.groupLog
      const setSize = (size: number): void => { this.size = size }

      /**
       * Verifies the pending groups and yields the part of them the caller asked for. On a
       * mismatch it first yields the verified groups before the bad one (they may have arrived
       * in the same batch), then throws: nothing from the bad group or after it is yielded.
       */
      const flush = function * (): Generator<Uint8Array, void, undefined> {
        throwIfAborted(signal)
        if (pendCount === 0 || pendLast == null) return
        // All pending groups are consecutive and whole, except maybe the value's final one.
        const last = pendLast
        const lastSpecial = last.isRoot || last.length !== groupLen
        const full = lastSpecial ? pendCount - 1 : pendCount
        let good = pendCount // groups that verified, from the first pending one
        if (full > 0) {
          blake3.groupCVs(out.subarray(pendPos, pendPos + full * groupLen), pendFirst * 2 ** groupLog, groupLog, computed, 0)
          for (let i = 0; i < full; i++) {
            if (!equalCV(computed, i * OUT_LEN, expected, i * OUT_LEN)) { good = i; break }
          }
        }
        if (good === pendCount && lastSpecial) {
          const at = pendPos + full * groupLen
          blake3.subtreeCV(out.subarray(at, at + last.length), last.index * 2 ** groupLog, last.isRoot, scratch, 0)
          if (!equalCV(scratch, 0, expected, full * OUT_LEN)) good = full
        }
        // Hand out the requested part of the verified groups.
        const valueStart = pendFirst * groupLen
        const valueEnd = valueStart + (pendCount - 1) * groupLen + last.length
        const goodEnd = good === pendCount ? valueEnd : valueStart + good * groupLen
        const from = Math.max(valueStart, emitStart)
        const to = Math.min(goodEnd, emitEnd)
        const bytes = to > from ? out.subarray(pendPos + (from - valueStart), pendPos + (to - valueStart)) : undefined
        const bad = good === pendCount ? undefined : pendFirst + good
        if (bad === undefined && last.index === plan.groups - 1) {
          setSize(plan.size)
          onSize?.(plan.size)
        }
        pendPos += valueEnd - valueStart
        pendFirst += pendCount
        pendCount = 0
        pendLast = undefined
        if (bytes != null) yield bytes
        if (bad !== undefined) throw mismatch(`group ${bad}`)
      }

      for (const item of streamItems(plan)) {
        if (item.kind === 'parent') {
          let node: Uint8Array
          if (chunk.length - pos >= PARENT_LEN) {
            node = chunk.subarray(pos, pos + PARENT_LEN)
            pos += PARENT_LEN
          } else {
            let have = 0
            while (have < PARENT_LEN) {
              if (pos === chunk.length) {
                yield * flush()
                if (!(await pull())) throw new StreamVerificationError('truncated', 'stream ended inside a parent node')
              }
              const take = Math.min(PARENT_LEN - have, chunk.length - pos)
              nodeBuf.set(chunk.subarray(pos, pos + take), have)
              have += take
              pos += take
            }
            node = nodeBuf
          }
          depth--
          blake3.parentCV(node.subarray(0, OUT_LEN), node.subarray(OUT_LEN, PARENT_LEN), item.isRoot, scratch, 0)
          if (!equalCV(scratch, 0, stack, depth * OUT_LEN)) {
            // The groups that arrived before this node are not below it: deliver them first.
            yield * flush()
            throw mismatch(`parent node of groups ${item.lo}..${item.hi - 1}`)
          }
          if (depth + 2 > MAX_STACK) throw mismatch('tree deeper than any valid tree')
          if (item.right) { stack.set(node.subarray(OUT_LEN, PARENT_LEN), depth * OUT_LEN); depth++ }
          if (item.left) { stack.set(node.subarray(0, OUT_LEN), depth * OUT_LEN); depth++ }
          continue
        }

        // A group: its expected CV joins the batch, its data is copied into the batch buffer.
        const length = item.length
        if (pendCount === batchGroups || out.length - outPos < length) {
          yield * flush()
        }
        if (out.length - outPos < length) {
          const n = Math.min(batchGroups * groupLen, dataEnd - nextGroupStart)
          out = target !== undefined ? target.subarray(nextGroupStart, nextGroupStart + n) : new Uint8Array(n)
          outPos = 0
          pendPos = 0
        }
        let have = 0
        while (have < length) {
          if (pos === chunk.length) {
            yield * flush()
            if (!(await pull())) throw new StreamVerificationError('truncated', `stream ended inside group ${item.index}`)
          }
          const take = Math.min(length - have, chunk.length - pos)
          out.set(chunk.subarray(pos, pos + take), outPos)
          outPos += take
          have += take
          pos += take
        }
        nextGroupStart += length
        // No parent arrives inside a group, so the stack top is still this group's expected CV.
        if (pendCount === 0) pendFirst = item.index
        depth--
        expected.set(stack.subarray(depth * OUT_LEN, (depth + 1) * OUT_LEN), pendCount * OUT_LEN)
        pendCount++
        pendLast = { index: item.index, length, isRoot: item.isRoot }
      }
      yield * flush()

      // Nothing may follow the expected end.
      if (pos < chunk.length || await pull()) {
        throw new StreamVerificationError('trailing', 'bytes follow the end of the verified stream')
      }
    } finally {
      // Stop the source on an early exit or error (ignoring its own errors then).
      await it.close(finished)
    }
  }
}

