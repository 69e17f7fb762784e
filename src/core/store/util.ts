/**
 * Helpers shared by the blob stores: range checks, source iteration with prompt
 * cancellation, verification of a finished hash against what the caller expected.
 */
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID } from '../cid.js'
import { AbortableIterator, throwIfAborted } from '../abort.js'
import { OutOfRangeError, VerificationError } from '../errors.js'
import type { ByteSource, GetOptions, PutOptions } from './interface.js'

/** Resolves `offset`/`length` against a value of `size` bytes. @throws {OutOfRangeError} */
export function resolveRange (size: number, options: GetOptions): { start: number, end: number } {
  const offset = options.offset ?? 0
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
    throw new OutOfRangeError(`Offset ${String(offset)} is outside a ${size}-byte value`)
  }
  const length = options.length ?? size - offset
  if (!Number.isSafeInteger(length) || length < 0 || offset + length > size) {
    throw new OutOfRangeError(`Range ${offset}+${String(length)} does not fit a ${size}-byte value`)
  }
  return { start: offset, end: offset + length }
}

/** Checks an `open()` reader's `read(offset, length)` arguments. @throws {OutOfRangeError} */
export function checkRead (size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new OutOfRangeError(`Read ${String(offset)}+${String(length)} does not fit a ${size}-byte value`)
  }
}

/** Validates `expected` and `size` before any byte is read, so bad arguments fail fast. */
export function checkPutOptions (options: PutOptions): CID | undefined {
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size < 0)) {
    throw new OutOfRangeError(`Invalid size ${String(options.size)}`)
  }
  return options.expected !== undefined ? parseCID(options.expected) : undefined
}

/** Turns a finished hash into a CID and checks it against the caller's `expected` and `size`. */
export function verifyPut (root: Uint8Array, size: number, expected: CID | undefined, options: PutOptions): CID {
  if (options.size !== undefined && options.size !== size) {
    throw new VerificationError(`Expected ${options.size} bytes, received ${size}`)
  }
  const cid = cidFromDigest(root)
  if (expected !== undefined && !expected.equals(cid)) {
    throw new VerificationError(`Value hashes to ${String(cid)}, expected ${String(expected)}`)
  }
  return cid
}

/**
 * Iterates a put source, rejecting promptly with {@link AbortError} when `signal` fires even if
 * the source is stalled, and closing the source (its `return()`) when the consumer stops early.
 */
export async function * iterateSource (source: ByteSource, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source || Symbol.iterator in source)) {
    throw new TypeError(`A put source must be a Uint8Array or an (async) iterable of Uint8Arrays, got ${typeof source === 'string' ? 'a string (encode it first)' : describe(source)}`)
  }
  if (source instanceof Uint8Array) {
    throwIfAborted(signal)
    yield source
    return
  }
  if (signal == null) {
    for await (const chunk of source) yield checkChunk(chunk)
    return
  }
  const pieces = new AbortableIterator<Uint8Array>(source, signal)
  let done = false
  try {
    for (;;) {
      const result = await pieces.next()
      if (result.done === true) { done = true; return }
      yield checkChunk(result.value)
    }
  } finally {
    await pieces.close(done)
  }
}

function describe (v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

function checkChunk (chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  throw new TypeError(`A put source must yield Uint8Arrays, got ${describe(chunk)}`)
}
