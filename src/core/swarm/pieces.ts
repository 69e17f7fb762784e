/**
 * How a value is cut into pieces for a multi-source (swarm) download: the unit a Local asks one
 * source for, and the unit of the HAVE bitfields. Every Local computes the same layout from the
 * value's size alone, so no piece size travels on the wire except as a check.
 *
 * A piece is a power of two of at least 256 KiB (whole 16 KiB chunk groups: a piece is verified
 * on its own, as a range) and at most 4 MiB (Kraken's piece size), chosen so that a value has
 * about 64 pieces: enough to spread over many sources, few enough that a request's round trip
 * and proof (O(log n) parents) stay small against the piece.
 */
import { OutOfRangeError } from '../errors.js'

export const MIN_PIECE = 256 * 1024
export const MAX_PIECE = 4 * 1024 * 1024
/** Pieces a value is cut into, about (fewer for values under 64 × {@link MIN_PIECE}). */
const TARGET_PIECES = 64

/** The piece size for a value of `size` bytes. */
export function pieceSize (size: number): number {
  checkSize(size)
  let p = MIN_PIECE
  while (p < MAX_PIECE && p * TARGET_PIECES < size) p *= 2
  return p
}

/** How many pieces a value of `size` bytes has (at least 1, also for the empty value). */
export function pieceCount (size: number): number {
  return Math.max(1, Math.ceil(size / pieceSize(size)))
}

/** The byte range of piece `index` (the last one may be shorter). */
export function pieceRange (size: number, index: number): { offset: number, length: number } {
  const p = pieceSize(size)
  const n = pieceCount(size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= n) throw new OutOfRangeError(`piece ${String(index)} is not one of the ${n} pieces of a ${size}-byte value`)
  const offset = index * p
  return { offset, length: Math.min(p, size - offset) }
}

function checkSize (size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new OutOfRangeError(`invalid size ${String(size)}`)
}

/** A fixed-length set of piece indices, as sent in HAVE answers: bit i is byte i >> 3, mask 1 << (i & 7). */
export class Bitfield {
  readonly bytes: Uint8Array
  private ones = 0

  constructor (readonly n: number) {
    if (!Number.isSafeInteger(n) || n < 0) throw new OutOfRangeError(`invalid bitfield length ${String(n)}`)
    this.bytes = new Uint8Array(Math.ceil(n / 8))
  }

  get (i: number): boolean { return i >= 0 && i < this.n && (this.bytes[i >> 3] & (1 << (i & 7))) !== 0 }

  set (i: number): void {
    this.check(i)
    if (this.get(i)) return
    this.bytes[i >> 3] |= 1 << (i & 7)
    this.ones++
  }

  clear (i: number): void {
    this.check(i)
    if (!this.get(i)) return
    this.bytes[i >> 3] &= ~(1 << (i & 7))
    this.ones--
  }

  /** Bits set. */
  count (): number { return this.ones }
  full (): boolean { return this.ones === this.n }

  /** A copy of the bits, for the wire. */
  toBytes (): Uint8Array { return this.bytes.slice() }

  /**
   * The bitfield of `n` bits encoded in `bytes`.
   * @throws {OutOfRangeError} when `bytes` is not ceil(n / 8) long or sets a bit past `n`.
   */
  static fromBytes (bytes: Uint8Array, n: number): Bitfield {
    const b = new Bitfield(n)
    if (bytes.length !== b.bytes.length) throw new OutOfRangeError(`a bitfield of ${n} bits is ${b.bytes.length} bytes, not ${bytes.length}`)
    for (let i = 0; i < n; i++) if ((bytes[i >> 3] & (1 << (i & 7))) !== 0) b.set(i)
    if (n % 8 !== 0 && bytes.length > 0 && (bytes[bytes.length - 1] >> (n % 8)) !== 0) throw new OutOfRangeError('bitfield sets bits past its length')
    return b
  }

  private check (i: number): void {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.n) throw new OutOfRangeError(`bit ${String(i)} is outside a bitfield of ${this.n}`)
  }
}
