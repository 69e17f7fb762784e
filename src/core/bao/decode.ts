/**
 * The receiving side of verified streaming: checks a stream produced by `encodeRange` against
 * the value's root hash and yields only verified bytes of the requested range.
 *
 * What is verified when is the business of {@link StreamVerifier} (verifier.ts), a synchronous
 * state machine (header, parent, group, flush). This module pulls the source for it, hands its
 * verified output to the caller, and owns cancellation and the source's lifetime.
 */
import { OUT_LEN } from '../blake3/index.js'
import { AbortableIterator, throwIfAborted } from '../abort.js'
import { OutOfRangeError } from '../errors.js'
import { DEFAULT_GROUP_LOG } from '../tree.js'
import { DEFAULT_BATCH_BYTES, MAX_SIZE, checkIntegerOption, planRange, type ByteRange } from './range.js'
import { StreamVerifier } from './verifier.js'

export { StreamVerificationError, type StreamFailure } from './verifier.js'

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
   * Called with each parent node of the stream once it has been verified: its pre-order index
   * among the value's parents (its place in the outboard: `parentOffset(index)`) and a 64-byte
   * view valid only during the call. A Local collects them to serve ranges of what it fetched.
   * The indices follow the tree shape of the size the header announces, which only the final
   * group authenticates (a wrong size fails there).
   */
  onParent?: (index: number, node: Uint8Array) => void
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
  checkArguments(root, range, groupLog, options)
  return new RangeDecoder(source, root.slice(), range, groupLog, options)
}

/**
 * What {@link decodeRange} yields for a whole stream already in hand (`encoded`: an inline
 * answer), verified synchronously: the same verifier, checks and errors, without the pull loop's
 * async generator and abortable iterator (a few microtask hops per piece, most of a small get's
 * own CPU when a thousand run at once). Every piece is verified before any is returned.
 */
export function decodeWhole (encoded: Uint8Array, root: Uint8Array, range: ByteRange,
  groupLog: number = DEFAULT_GROUP_LOG, options: DecodeOptions = {}): Uint8Array[] {
  checkArguments(root, range, groupLog, options)
  throwIfAborted(options.signal)
  const verifier = verifierFor(root.slice(), range, groupLog, options, options.onSize)
  const out: Uint8Array[] = []
  let fed = false
  for (;;) {
    const step = verifier.step()
    if (step === 'output') out.push(verifier.output)
    else if (step === 'done') return out
    else if (fed) verifier.end() // throws 'truncated' unless the stream was complete
    else { verifier.feed(encoded); fed = true }
  }
}

/** The argument checks both decoders make before reading anything. */
function checkArguments (root: Uint8Array, range: ByteRange, groupLog: number, options: DecodeOptions): void {
  planRange(0, range, groupLog) // validates the range and groupLog now rather than on first read
  checkIntegerOption('maxSize', options.maxSize, 0)
  checkIntegerOption('batchBytes', options.batchBytes, 1)
  if (!(root instanceof Uint8Array) || root.length !== OUT_LEN) throw new OutOfRangeError('root must be 32 bytes')
}

/** The verifier of a decode, from its options. */
function verifierFor (root: Uint8Array, range: ByteRange, groupLog: number, options: DecodeOptions,
  onSize: ((size: number) => void) | undefined): StreamVerifier {
  return new StreamVerifier(root, range, groupLog, {
    maxSize: Math.min(options.maxSize ?? MAX_SIZE, MAX_SIZE),
    batchBytes: options.batchBytes ?? DEFAULT_BATCH_BYTES,
    target: options.target,
    onParent: options.onParent,
    onSize: onSize ?? (() => {})
  })
}

/** The async side of a decode: pulls the source into a {@link StreamVerifier}, yields its output. */
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
    const verifier = verifierFor(this.root, this.range, this.groupLog, this.options, (size) => { this.size = size; onSize?.(size) })
    // An abort must not wait for a stalled source, and must not keep pieces reachable.
    const it = new AbortableIterator<Uint8Array>(this.source, signal)
    let ended = false // the source ended by itself
    try {
      for (;;) {
        const step = verifier.step()
        if (step === 'output') {
          throwIfAborted(signal)
          yield verifier.output
        } else if (step === 'input') {
          const r = await it.next() // throws AbortError at once on an abort, even while the source stalls
          if (r.done === true) {
            ended = true
            verifier.end() // throws 'truncated' unless the stream was complete
          } else {
            if (!(r.value instanceof Uint8Array)) throw new TypeError('verified stream pieces must be Uint8Arrays')
            verifier.feed(r.value)
          }
        } else {
          return
        }
      }
    } finally {
      // Stop the source on an early exit or error (ignoring its own errors then); one still
      // stuck in a next() is asked to stop but not waited for (AbortableIterator.close).
      await it.close(ended)
    }
  }
}
