/**
 * A value being fetched piece by piece (a swarm download), in one buffer: what a Local has
 * verified of it so far, so that it can serve those pieces to other Locals while it fetches the
 * rest, and hand over the whole value without a copy once complete.
 *
 * - `data` holds the value at its offsets. Only bytes of pieces that are *held* (every byte
 *   verified) are ever read out; the rest may hold anything, including bytes a decoder wrote
 *   before it rejected them.
 * - `outboard` fills with the verified parent nodes the range streams carried (`onParent`).
 *   Every range stream carries the parents on the path of each group it holds, so a held piece
 *   can always be proved: `encode` works for any held range.
 *
 * Ownership rule (callers: src/peers/local/swarm-fetch.ts): at most one decoder writes a piece
 * into `data` at a time, and none once the piece is held (a decoder writes bytes before it has
 * verified them, so a second writer could spoil bytes already verified). A duplicate request of
 * a piece (the endgame) decodes into its own buffer and {@link fill}s the piece if it is still
 * missing. Pure: no libp2p.
 */
import { NotFoundError, OutOfRangeError } from '../errors.js'
import { encodeRangeSync, type ByteRange } from '../bao/index.js'
import { parentOffset } from '../bao/range.js'
import { freshBytes } from '../prefault.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, PARENT_LEN, encodeHeader, outboardLength } from '../tree.js'
import { Bitfield, pieceCount, pieceSize } from './pieces.js'

export class PartialValue {
  readonly pieceSize: number
  readonly pieces: number
  readonly data: Uint8Array
  readonly outboard: Uint8Array
  /** Pieces held: every byte verified and in `data`. */
  readonly have: Bitfield
  /** Pieces this Local is fetching now (told to peers in HAVE answers, so they wait rather than ask Global). */
  readonly fetching: Bitfield
  /** Verified bytes from the start of each piece (bytes verified out of order are not counted). */
  private readonly verifiedTo: Float64Array
  private contiguous = 0
  private waiters: Array<() => void> = []
  private closedWith: Error | undefined

  constructor (readonly size: number, data?: Uint8Array) {
    if (!Number.isSafeInteger(size) || size < 0) throw new OutOfRangeError(`invalid size ${String(size)}`)
    if (data !== undefined && data.length !== size) throw new OutOfRangeError(`a buffer of ${data.length} bytes cannot hold a ${size}-byte value`)
    this.pieceSize = pieceSize(size)
    this.pieces = pieceCount(size)
    this.data = data ?? freshBytes(size)
    this.outboard = new Uint8Array(outboardLength(size, DEFAULT_GROUP_LOG))
    this.outboard.set(encodeHeader(size), 0)
    this.have = new Bitfield(this.pieces)
    this.fetching = new Bitfield(this.pieces)
    this.verifiedTo = new Float64Array(this.pieces)
  }

  get closed (): boolean { return this.closedWith !== undefined }
  /** Why it was closed (an eviction, an abandoned download), if it was. */
  get closeReason (): Error | undefined { return this.closedWith }

  /** Copies a verified parent node (a decoder's `onParent`) into the outboard. */
  onParent (index: number, node: Uint8Array): void {
    const at = parentOffset(index)
    if (node.length !== PARENT_LEN || at < HEADER_LEN || at + PARENT_LEN > this.outboard.length) return // not of this value's shape
    this.outboard.set(node, at)
  }

  /**
   * Bytes `[offset, offset + bytes)` were verified and are in `data` at their offsets. Pieces
   * whose bytes are all verified become held. Bytes must arrive in order within a piece (as a
   * decoder yields them); verifying a piece again (a refetch after a failure) is harmless.
   */
  verified (offset: number, bytes: number): void {
    if (this.closed || bytes <= 0) return
    let pos = offset
    const end = Math.min(offset + bytes, this.size)
    while (pos < end) {
      const i = Math.floor(pos / this.pieceSize)
      const start = i * this.pieceSize
      const len = Math.min(this.pieceSize, this.size - start)
      const upto = Math.min(end, start + len) - start
      if (pos - start <= this.verifiedTo[i]) this.verifiedTo[i] = Math.max(this.verifiedTo[i], upto)
      if (this.verifiedTo[i] >= len) this.markHeld(i)
      pos = start + len
    }
    this.advance()
    this.wake()
  }

  /** Copies a whole piece verified elsewhere (an endgame duplicate) into `data`, unless it is held already. Returns whether it did. */
  fill (index: number, bytes: Uint8Array): boolean {
    if (this.closed || this.have.get(index)) return false
    const start = index * this.pieceSize
    const len = Math.min(this.pieceSize, this.size - start)
    if (bytes.length !== len) throw new OutOfRangeError(`piece ${index} is ${len} bytes, not ${bytes.length}`)
    this.data.set(bytes, start)
    this.verified(start, len)
    return true
  }

  /** Whether every piece overlapping `range` (clipped to the value) is held; false once closed. */
  holds (range: ByteRange): boolean {
    if (this.closed) return false
    if (this.size === 0) return this.have.full()
    const offset = Math.min(range.offset, this.size - 1)
    const last = Math.min(this.size, range.offset + Math.max(range.length, 1)) - 1
    for (let i = Math.floor(offset / this.pieceSize); i <= Math.floor(Math.max(offset, last) / this.pieceSize); i++) {
      if (!this.have.get(i)) return false
    }
    return true
  }

  /** The verified stream of a held range (as the encoder would send it). @throws {NotFoundError} when not held. */
  encode (range: ByteRange): Uint8Array {
    if (!this.holds(range)) throw new NotFoundError(`range ${range.offset}+${range.length} of this value is not held here (yet)`)
    return encodeRangeSync(this.data, this.outboard, range, DEFAULT_GROUP_LOG)
  }

  /** Verified bytes from offset 0 with no gap. */
  prefix (): number { return this.contiguous }

  complete (): boolean { return this.have.full() }

  /** Resolves at the next change: bytes verified, or closed. */
  async changed (): Promise<void> {
    if (this.closed) return
    await new Promise<void>(resolve => { this.waiters.push(resolve) })
  }

  /** Evicted or abandoned: holds nothing from now on (so nothing of it is served), and waiters wake. */
  close (reason: Error = new NotFoundError('this download was closed')): void {
    if (this.closed) return
    this.closedWith = reason
    this.wake()
  }

  private markHeld (i: number): void {
    this.have.set(i)
    if (this.fetching.get(i)) this.fetching.clear(i)
  }

  private advance (): void {
    while (this.contiguous < this.size) {
      const i = Math.floor(this.contiguous / this.pieceSize)
      const start = i * this.pieceSize
      const next = start + this.verifiedTo[i]
      if (next <= this.contiguous) break
      this.contiguous = next
      if (this.verifiedTo[i] < Math.min(this.pieceSize, this.size - start)) break
    }
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
  }
}
