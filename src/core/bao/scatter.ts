/**
 * The encoder's path for a reader that can scatter-read (`BlobReader.readv`, the filesystem
 * store's): each output piece is laid out first (header, parents copied from the outboard, and
 * gaps for the groups' data), then one `readv` fills every gap straight from the file. The data
 * is never copied on the main thread: the kernel writes it into the piece (in the thread pool).
 *
 * Ownership: every piece comes from `allocate` (by default a fresh buffer), is yielded once and
 * never touched again by the encoder. It may hold anything when given (a fresh one is
 * uninitialised, `Buffer.allocUnsafeSlow`; a reused one holds an earlier piece), which is safe
 * because it is yielded only after every byte was written: the layout covers it exactly
 * (checked) and `readv` rejects unless it filled every gap.
 */
import { throwIfAborted } from '../abort.js'
import type { BlobReader } from '../store/interface.js'
import { HEADER_LEN, PARENT_LEN } from '../tree.js'
import { parentOffset, streamItems, type RangePlan } from './range.js'

/**
 * `length` bytes of fresh, uninitialised memory (no zero fill), as a plain Uint8Array: a Buffer's
 * `slice()` is a view, not a copy, which a consumer of the pieces need not expect.
 */
export function uninitialised (length: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(length)
  return new Uint8Array(b.buffer, b.byteOffset, length)
}

/** A piece laid out, its data being read. */
interface Piece {
  bytes: Uint8Array
  filled: Promise<void>
}

/** What still has to be placed from the current stream item, when it straddles pieces. */
interface Pending {
  /** Bytes from the outboard (a parent) or from the value (a group's data). */
  from: 'outboard' | 'value'
  at: number
  left: number
}

/**
 * Yields the verified stream of `plan` (of `total` bytes) in fresh pieces of `batch` bytes (the
 * last one shorter), the next piece's read in flight while the current one is consumed (unless
 * `readAhead` is false).
 */
export async function * scatterEncode (reader: BlobReader & Required<Pick<BlobReader, 'readv'>>, outboard: Uint8Array,
  plan: RangePlan, total: number, batch: number, readAhead: boolean, signal: AbortSignal | undefined,
  allocate: (length: number) => Uint8Array): AsyncGenerator<Uint8Array, void, undefined> {
  const items = streamItems(plan)
  let remaining = total
  let pending: Pending | undefined = { from: 'outboard', at: 0, left: HEADER_LEN }

  /** Lays out the next piece and starts reading its data; undefined once the stream is complete. */
  const layOut = (): Piece | undefined => {
    if (remaining === 0) return undefined
    const bytes = allocate(Math.min(batch, remaining))
    const targets: Uint8Array[] = []
    let valueStart = -1
    let valueEnd = -1
    let pos = 0
    while (pos < bytes.length) {
      if (pending === undefined) {
        const next = items.next()
        if (next.done === true) throw new Error(`encoder ran out of stream items ${remaining - pos} bytes short`)
        const item = next.value
        pending = item.kind === 'parent'
          ? { from: 'outboard', at: parentOffset(item.index), left: PARENT_LEN }
          : { from: 'value', at: item.start, left: item.length }
        if (pending.left === 0) { pending = undefined; continue }
      }
      const take = Math.min(pending.left, bytes.length - pos)
      if (pending.from === 'outboard') {
        bytes.set(outboard.subarray(pending.at, pending.at + take), pos)
      } else {
        // The selected groups are consecutive in the value: one read covers this piece's data.
        if (valueStart < 0) valueStart = pending.at
        else if (pending.at !== valueEnd) throw new Error(`encoder data is not consecutive at ${pending.at}`)
        const last = targets[targets.length - 1]
        // Adjacent groups with no parent between them are one target (fewer iovecs).
        if (last !== undefined && last.byteOffset + last.length === bytes.byteOffset + pos) {
          targets[targets.length - 1] = bytes.subarray(last.byteOffset - bytes.byteOffset, pos + take)
        } else {
          targets.push(bytes.subarray(pos, pos + take))
        }
        valueEnd = pending.at + take
      }
      pos += take
      pending.at += take
      pending.left -= take
      if (pending.left === 0) pending = undefined
    }
    remaining -= bytes.length
    const filled = targets.length === 0 ? Promise.resolve() : reader.readv(valueStart, targets)
    // Avoid an unhandled rejection if the consumer stops before this piece is awaited.
    filled.catch(() => {})
    return { bytes, filled }
  }

  let current = layOut()
  while (current !== undefined) {
    const next = readAhead ? layOut() : undefined
    await current.filled
    throwIfAborted(signal)
    yield current.bytes
    current = readAhead ? next : layOut()
  }
  // Only empty groups (the empty value's) may be left.
  for (const item of items) {
    if (item.kind === 'parent' || item.length > 0) pending = { from: 'value', at: 0, left: 1 }
  }
  if (pending !== undefined) throw new Error('encoder has stream items left over')
}
