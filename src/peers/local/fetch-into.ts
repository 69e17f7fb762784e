/**
 * A get into the caller's buffer (`Local.get(cid, { into })`): the value is decoded straight
 * into memory the caller owns and reuses, so a large get costs no fresh value-sized buffer. A
 * fresh buffer costs its first-touch page faults as much as the bytes themselves cost (about
 * 0.5 s of CPU per GB here: the largest cost of a cold get that is dstore's own).
 *
 * The contract, which `fs.read` into a buffer also has:
 * - the caller neither reads nor writes `into` until the get settles. Until then it holds group
 *   data being verified; once the get fails, every byte it may have written is zeroed (and so are bytes a failed attempt wrote past the value, when a retry succeeds), so no
 *   unverified byte stays in the caller's memory;
 * - on success the value is `into`'s first `size` bytes (the view returned); the rest of `into`
 *   is left as it was;
 * - a value larger than `into` is refused (TooLargeError) before any of it is written;
 * - two gets in flight may not write the same bytes: one whose `into` overlaps another's is
 *   refused (ArgumentError, into-claims.ts).
 *
 * The value is the caller's, so it is not cached and the transfer is not shared: a concurrent
 * get of the same value may run its own transfer, and a later get asks Global again. A value
 * already cached is copied into `into` (memory the caller has touched already).
 */
import { types } from 'node:util'
import type { CID } from 'multiformats/cid'
import { ArgumentError, TooLargeError } from '../../core/errors.js'
import { isReadOnly } from '../../core/read-only.js'
import type { CallOptions } from '../../core/store/interface.js'
import { getRange } from '../../protocol/requester.js'
import { tiles } from './bytes.js'
import type { GlobalRoute } from './globals.js'
import { describe } from './options.js'
import { callGlobal } from './retry.js'

/** `into` checked: a Uint8Array over memory of the caller's own that no other thread shares. */
export function checkInto (into: unknown): Uint8Array {
  if (!(into instanceof Uint8Array)) throw new ArgumentError(`into: expected a Uint8Array, got ${describe(into)}`)
  // Not `instanceof SharedArrayBuffer`: that misses one from another realm (a vm context).
  if (types.isSharedArrayBuffer(into.buffer)) {
    throw new ArgumentError('into: a SharedArrayBuffer is refused (another thread could read bytes not verified yet)')
  }
  if (isReadOnly(into)) {
    throw new ArgumentError('into: this buffer holds a value dstore handed out read-only (an earlier get\'s value, shared with the cache): pass a buffer of your own')
  }
  return into
}

/**
 * The error of a value larger than `into`, in one wording whether the value was cached or
 * fetched (the decoder's own message names its `maxSize`, not `into`). `size` undefined: a
 * stream whose header announced more than the size Global answered with (which fitted).
 */
export function intoTooLarge (size: number | undefined, into: Uint8Array, cause?: unknown): TooLargeError {
  const what = size === undefined ? 'the value is' : `the value is ${size} bytes,`
  return new TooLargeError(`${what} more than the ${into.length} of into`, { cause })
}

/** Fetches `key`'s value from Global into `into` (see the module comment), and returns its view. */
export async function fetchInto (conn: GlobalRoute, key: CID, into: Uint8Array, options: CallOptions): Promise<Uint8Array> {
  const digest = key.multihash.digest
  /** Bytes of `into` the decoder may have written (zeroed on failure). */
  let touched = 0
  /** The size Global announced, once it has (for the TooLargeError of one larger than `into`). */
  let announced: number | undefined
  try {
    const value = await callGlobal(conn, { signal: options.signal, key: digest }, async ctx => {
      const parts: Uint8Array[] = []
      let n = 0
      let target: Uint8Array | undefined
      const stream = getRange(ctx, digest, { offset: 0 }, {
        maxSize: into.length,
        signal: options.signal,
        onProgress: options.onProgress,
        // The announced size is a hint the decoder checks; one above `into.length` is refused
        // (maxSize) before a byte is written, so `into` is given only for a size that fits.
        target: (size) => {
          announced = size
          if (size > into.length) return undefined
          target = into.subarray(0, size)
          touched = Math.max(touched, size)
          return target
        }
      })
      for await (const part of stream) { parts.push(part); n += part.length }
      const value = into.subarray(0, n)
      // Decoded in place (the usual case); otherwise (the stream's size differs from the one announced) copied over.
      if (target === undefined || target.length !== n || !tiles(parts, value)) {
        touched = Math.max(touched, n)
        let o = 0
        for (const p of parts) { if (!(p.buffer === into.buffer && p.byteOffset === into.byteOffset + o)) into.set(p, o); o += p.length }
      }
      return value
    })
    // An earlier attempt (a channel that broke, then a retry) may have written past this value.
    if (touched > value.length) into.fill(0, value.length, touched)
    return value
  } catch (err) {
    into.fill(0, 0, touched)
    if (err instanceof TooLargeError) throw intoTooLarge(announced !== undefined && announced > into.length ? announced : undefined, into, err)
    throw err
  }
}
