/**
 * The verification core of verified streaming: a synchronous state machine that is fed the
 * pieces of a stream produced by `encodeRange` and hands back only verified bytes of the
 * requested range. `decodeRange` (decode.ts) drives it from an async source.
 *
 * States, in stream order, and what each verifies (see `docs/PROTOCOL.md`, "Verified streaming"):
 * - `header`: collects the 8-byte length. It is not trusted yet: it only shapes the walk (the
 *   `RangePlan`). A header above `maxSize` is refused here, before anything else is read;
 * - `parent`: collects a 64-byte parent node and checks it at once against the CV on top of the
 *   stack (the root hash, with the ROOT flag, for the top node). Its children's CVs then replace
 *   it on the stack, for whichever of its subtrees the stream carries;
 * - `group`: copies a group's data into the {@link GroupBatch}; when the group is complete, its
 *   expected CV (the stack top) goes with it. Nothing of it is handed out yet;
 * - `flush`: verifies the pending groups, hands out the verified part of the range, then goes
 *   back to the state it interrupted (or fails, after handing out the groups before a bad one);
 * - `trailer`: every node has been read and verified; any further byte is an error;
 * - `done`, `failed`: terminal.
 *
 * The length is authenticated only when the value's final group has been verified: a wrong
 * length changes the tree's right edge or the final group, and so fails there (or ends the
 * stream early, or leaves bytes over). `onSize` is called then.
 *
 * Pending groups are verified as soon as the batch is full, before a wait for input (so what has
 * fully arrived is never held back), before a parent mismatch is reported (those groups are not
 * below the bad node), and at the end.
 */
import { blake3, OUT_LEN } from '../blake3/index.js'
import { TooLargeError, VerificationError } from '../errors.js'
import { HEADER_LEN, PARENT_LEN, decodeHeader } from '../tree.js'
import { GroupBatch, equalCV } from './group-batch.js'
import { planRange, streamItems, type ByteRange, type GroupItem, type ParentItem, type RangePlan, type StreamItem } from './range.js'

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

/** What the driver must do after {@link StreamVerifier.step}. */
export type VerifierStep =
  /** Hand {@link StreamVerifier.output} to the caller. */
  | 'output'
  /** Get the next piece of the source: {@link StreamVerifier.feed} it, or call {@link StreamVerifier.end}. */
  | 'input'
  /** The stream was complete and verified, and the source ended there. */
  | 'done'

type State = 'header' | 'parent' | 'group' | 'flush' | 'trailer' | 'done' | 'failed'

export interface VerifierOptions {
  /** Largest size a header may announce. */
  maxSize: number
  /** Bytes of group data verified together (rounded down to whole groups, at least one). */
  batchBytes: number
  /** A buffer to decode into, used when it has exactly the announced size. */
  target?: Uint8Array
  /** Called once the final group is verified, with the value's (now authenticated) size. */
  onSize: (size: number) => void
  /** Called with each parent node once verified: its pre-order index, and a 64-byte view valid during the call. */
  onParent?: (index: number, node: Uint8Array) => void
}

const EMPTY: Uint8Array = new Uint8Array(0)
/** CV stack: the traversal holds at most two pending children per level, 64 levels at most. */
const MAX_STACK = 130

function mismatch (what: string): StreamVerificationError {
  return new StreamVerificationError('mismatch', `${what} does not match its expected chaining value`)
}

/**
 * Verifies one stream against `root`. Use: call {@link step} until it returns 'done'; on
 * 'output' hand out {@link output}, on 'input' {@link feed} the next piece (any length, even 0)
 * or call {@link end} when the source has ended. Any error thrown is final.
 */
export class StreamVerifier {
  private state: State = 'header'
  /** The state a flush interrupted, resumed after it. */
  private resume: State = 'header'
  /** The error to throw once the pending groups before it are handed out. */
  private failure: Error | undefined

  // --- input: the current piece of the source and the position in it ---
  private piece: Uint8Array = EMPTY
  private pos = 0

  // --- header ---
  private readonly header = new Uint8Array(HEADER_LEN)
  private headerGot = 0

  // --- the walk, known once the header is in ---
  private plan: RangePlan | undefined
  private items: Iterator<StreamItem, void> | undefined
  /** The node being read (a parent or a group). */
  private item: StreamItem | undefined

  // --- parent: a node split across pieces is collected here ---
  private readonly node = new Uint8Array(PARENT_LEN)
  private nodeGot = 0

  /**
   * Expected CVs, top at `depth - 1`: the CV of the next node in the stream is always on top
   * (the walk is pre-order, and a parent pushes its right child's CV below its left child's).
   */
  private readonly stack = new Uint8Array(MAX_STACK * OUT_LEN)
  private depth = 1
  private readonly scratch = new Uint8Array(OUT_LEN)

  // --- group: bytes of the current group written to the batch so far ---
  private groupGot = 0
  /** The current group has been given room in the batch. */
  private groupOpen = false
  private batch: GroupBatch | undefined

  /** The verified bytes to hand out, after {@link step} returned 'output'. */
  output: Uint8Array = EMPTY

  constructor (root: Uint8Array, private readonly range: ByteRange, private readonly groupLog: number,
    private readonly options: VerifierOptions) {
    this.stack.set(root, 0)
  }

  /** The next piece of the stream, after {@link step} returned 'input'. Empty pieces are fine. */
  feed (piece: Uint8Array): void {
    this.piece = piece
    this.pos = 0
  }

  /**
   * The source has ended (after {@link step} returned 'input').
   * @throws {StreamVerificationError} 'truncated' unless every node has been read
   */
  end (): void {
    if (this.state === 'trailer') { this.state = 'done'; return }
    this.state = 'failed'
    if (this.item === undefined) {
      this.failure = new StreamVerificationError('truncated', `stream ended after ${this.headerGot} of ${HEADER_LEN} header bytes`)
    } else if (this.item.kind === 'parent') {
      this.failure = new StreamVerificationError('truncated', 'stream ended inside a parent node')
    } else {
      this.failure = new StreamVerificationError('truncated', `stream ended inside group ${this.item.index}`)
    }
    throw this.failure
  }

  /**
   * Runs until the caller has something to do.
   * @throws {StreamVerificationError} at the first node that does not verify, or trailing bytes
   * @throws {TooLargeError} for a header above `maxSize`
   */
  step (): VerifierStep {
    try {
      for (;;) {
        let next: VerifierStep | undefined
        switch (this.state) {
          case 'header': next = this.readHeader(); break
          case 'parent': next = this.readParent(); break
          case 'group': next = this.readGroup(); break
          case 'flush': next = this.flush(); break
          case 'trailer': next = this.readTrailer(); break
          case 'done': return 'done'
          case 'failed': throw this.failure
        }
        if (next !== undefined) return next
      }
    } catch (err) {
      this.state = 'failed'
      this.failure = err as Error
      throw err
    }
  }

  /** The piece is used up: verify what has fully arrived before waiting for more. */
  private needInput (): VerifierStep | undefined {
    if (this.batch !== undefined && this.batch.pending > 0) return this.flushThen(this.state)
    return 'input'
  }

  /** Verifies the pending groups (if any), then goes to `next`. */
  private flushThen (next: State): undefined {
    this.resume = next
    this.state = this.batch !== undefined && this.batch.pending > 0 ? 'flush' : next
    return undefined
  }

  /** Fails with `err`, after handing out the verified groups that arrived before the bad node. */
  private fail (err: Error): undefined {
    this.failure = err
    return this.flushThen('failed')
  }

  /** Moves to the next node of the walk, or to the trailer after the last one. */
  private advance (): undefined {
    const r = (this.items as Iterator<StreamItem, void>).next()
    if (r.done === true) return this.flushThen('trailer')
    this.item = r.value
    if (r.value.kind === 'parent') {
      this.state = 'parent'
    } else {
      this.state = 'group'
      this.groupGot = 0
      this.groupOpen = false
    }
    return undefined
  }

  private readHeader (): VerifierStep | undefined {
    const take = Math.min(HEADER_LEN - this.headerGot, this.piece.length - this.pos)
    this.header.set(this.piece.subarray(this.pos, this.pos + take), this.headerGot)
    this.headerGot += take
    this.pos += take
    if (this.headerGot < HEADER_LEN) return 'input' // nothing can be pending yet
    const claimed = decodeHeader(this.header)
    const { maxSize, batchBytes, target } = this.options
    if (claimed > BigInt(maxSize)) throw new TooLargeError(`stream announces ${claimed} bytes, more than the ${maxSize} allowed`)
    const plan = planRange(Number(claimed), this.range, this.groupLog)
    this.plan = plan
    this.batch = new GroupBatch(plan, batchBytes, target?.length === plan.size ? target : undefined)
    this.items = streamItems(plan)
    return this.advance()
  }

  private readParent (): VerifierStep | undefined {
    const item = this.item as ParentItem
    const avail = this.piece.length - this.pos
    let node: Uint8Array
    if (this.nodeGot === 0 && avail >= PARENT_LEN) {
      // The usual case: the whole node is in this piece; check it in place.
      node = this.piece.subarray(this.pos, this.pos + PARENT_LEN)
      this.pos += PARENT_LEN
    } else {
      if (avail === 0) return this.needInput()
      const take = Math.min(PARENT_LEN - this.nodeGot, avail)
      this.node.set(this.piece.subarray(this.pos, this.pos + take), this.nodeGot)
      this.nodeGot += take
      this.pos += take
      if (this.nodeGot < PARENT_LEN) return this.needInput()
      this.nodeGot = 0
      node = this.node
    }
    this.depth--
    const left = node.subarray(0, OUT_LEN)
    const right = node.subarray(OUT_LEN, PARENT_LEN)
    blake3.parentCV(left, right, item.isRoot, this.scratch, 0)
    if (!equalCV(this.scratch, 0, this.stack, this.depth * OUT_LEN)) {
      return this.fail(mismatch(`parent node of groups ${item.lo}..${item.hi - 1}`))
    }
    // Verified: its children's CVs are now trusted expectations (left on top: it comes first).
    this.options.onParent?.(item.index, node)
    if (this.depth + 2 > MAX_STACK) return this.fail(mismatch('tree deeper than any valid tree'))
    if (item.right) { this.stack.set(right, this.depth * OUT_LEN); this.depth++ }
    if (item.left) { this.stack.set(left, this.depth * OUT_LEN); this.depth++ }
    return this.advance()
  }

  private readGroup (): VerifierStep | undefined {
    const item = this.item as GroupItem
    const batch = this.batch as GroupBatch
    if (!this.groupOpen) {
      if (batch.full(item.length)) return this.flushThen('group')
      batch.open(item.length)
      this.groupOpen = true
    }
    if (this.groupGot < item.length) {
      const avail = this.piece.length - this.pos
      if (avail === 0) return this.needInput()
      const take = Math.min(item.length - this.groupGot, avail)
      batch.write(this.piece, this.pos, this.pos + take)
      this.groupGot += take
      this.pos += take
      if (this.groupGot < item.length) return this.needInput()
    }
    // Complete. No parent arrives inside a group, so the stack top is still its expected CV.
    this.depth--
    batch.close(item.index, item.length, item.isRoot, this.stack, this.depth * OUT_LEN)
    return this.advance()
  }

  private flush (): VerifierStep | undefined {
    const r = (this.batch as GroupBatch).verify()
    if (r.bad !== undefined) {
      // Groups come before any later node in the stream: this failure is the first one.
      this.failure = mismatch(`group ${r.bad}`)
      this.state = 'failed'
    } else {
      this.state = this.resume
      if (r.final) this.options.onSize((this.plan as RangePlan).size)
    }
    if (r.bytes.length === 0) return undefined
    this.output = r.bytes
    return 'output'
  }

  private readTrailer (): VerifierStep | undefined {
    if (this.pos < this.piece.length) throw new StreamVerificationError('trailing', 'bytes follow the end of the verified stream')
    return 'input'
  }
}
