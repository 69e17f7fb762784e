/**
 * The bytes of callers' buffers that gets `into` them (fetch-into.ts) are writing now, so that
 * two gets in flight never write the same bytes. Two such gets would corrupt each other: one
 * decodes its value over the other's verified bytes, and a failed one zeroes them, so the
 * value the other returns is no longer the one it verified. A get whose `into` overlaps one
 * still in flight is refused at once (ArgumentError), before anything is written; views of one
 * ArrayBuffer that do not overlap (slots of one large buffer) may be used at the same time.
 *
 * Ranges are kept per ArrayBuffer, in a WeakMap (a buffer the caller drops holds nothing
 * here), for the get's whole duration, the copy of a cached value included.
 */
import { ArgumentError } from '../../core/errors.js'

/** A range of an ArrayBuffer's bytes, [start, end). */
interface Claim { start: number, end: number }

/** The ranges gets in flight write into, per ArrayBuffer (few at a time: a linear scan). */
const claimed = new WeakMap<ArrayBufferLike, Claim[]>()

/**
 * Registers `into`'s bytes as written by a get until the returned function is called (in the
 * get's `finally`; calling it again does nothing).
 * @throws {ArgumentError} when they overlap those of a get still in flight.
 */
export function claimInto (into: Uint8Array): () => void {
  // An empty view writes nothing, so it overlaps nothing.
  if (into.byteLength === 0) return () => {}
  const claim = { start: into.byteOffset, end: into.byteOffset + into.byteLength }
  const buffer = into.buffer
  const claims = claimed.get(buffer) ?? []
  const other = claims.find(c => c.start < claim.end && claim.start < c.end)
  if (other !== undefined) {
    throw new ArgumentError(`into: bytes ${claim.start}-${claim.end} of its ArrayBuffer overlap bytes ${other.start}-${other.end}, which another get into it is still writing (the two would corrupt each other's values): wait for that get to settle, or use views that do not overlap`)
  }
  claims.push(claim)
  claimed.set(buffer, claims)
  return () => {
    const i = claims.indexOf(claim)
    if (i < 0) return
    claims.splice(i, 1)
    if (claims.length === 0 && claimed.get(buffer) === claims) claimed.delete(buffer)
  }
}
