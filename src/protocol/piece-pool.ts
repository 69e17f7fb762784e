/**
 * The output pieces of one blob GET, reused once the receiver has provably consumed them, so
 * a large GET touches the same dozen buffers instead of a fresh one (fresh pages: page faults,
 * garbage) per piece.
 *
 * When is a piece free? Not when `stream.send` returns: yamux, the connection and the TLS
 * socket queue views of it, with no signal when they are done. But the receiver's CREDIT is
 * one: by the flow-control rule (docs/PROTOCOL.md, "Flow control") a receiver grants at most
 * one window past what it has consumed, so a grant of `total` means it has consumed at least
 * `total - BLOB_WINDOW` raw bytes. A byte the receiver consumed was received, so it was
 * encrypted and written by our TLS socket, which then never reads the cleartext again: the
 * piece holding it may be overwritten without changing a byte on the wire. A receiver that
 * breaks the rule (grants more than it consumed plus a window) can only receive other bytes
 * of the value it asked for in the wrong place, which its own decoder rejects.
 *
 * Pieces never leave the GET: the pool is dropped with it, so no other value's bytes can
 * appear in its stream.
 */
import { uninitialised } from '../core/bao/scatter.js'
import { BLOB_WINDOW } from './constants.js'

/** Pieces reused so far by every pool (for tests and measurements). */
let reusedTotal = 0

/** How many pieces pools have handed out again after their receiver consumed them. */
export function reusedPieces (): number { return reusedTotal }

/** The output buffers of one GET's encoder (see the module comment). */
export class PiecePool {
  private readonly free: Uint8Array[] = []
  /** Lent to the encoder, not yet sent. */
  private readonly lent = new Set<ArrayBufferLike>()
  /** Sent, in order: the raw byte offset each one ends at. */
  private readonly sent: Array<{ piece: Uint8Array, end: number }> = []

  /** @param capacity bytes of each pooled buffer: the encoder's piece size. */
  constructor (private readonly capacity: number, private readonly window = BLOB_WINDOW) {}

  /** A buffer of `length` bytes no one else reads or writes (the encoder's `allocate`). */
  readonly allocate = (length: number): Uint8Array => {
    if (length > this.capacity) return uninitialised(length)
    let full = this.free.pop()
    if (full !== undefined) reusedTotal++
    else full = uninitialised(this.capacity)
    this.lent.add(full.buffer)
    return full.subarray(0, length)
  }

  /** `piece` (from {@link allocate}) is about to be sent as the raw bytes ending at offset `end`. */
  sending (piece: Uint8Array, end: number): void {
    if (!this.lent.delete(piece.buffer)) return
    this.sent.push({ piece: new Uint8Array(piece.buffer, 0, this.capacity), end })
  }

  /** The receiver granted credit up to `total`: every piece it has provably consumed is free. */
  granted (total: number): void {
    const consumed = total - this.window
    while (this.sent.length > 0 && this.sent[0].end <= consumed) this.free.push((this.sent.shift() as { piece: Uint8Array }).piece)
  }
}
