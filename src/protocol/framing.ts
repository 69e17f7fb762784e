/**
 * Frames on a libp2p stream: an unsigned LEB128 varint length, then that many bytes.
 *
 * The reader refuses a frame longer than its limit as soon as the length is read, before
 * buffering anything, so a peer cannot make us allocate what it announces. A blob stream is a
 * head frame followed by raw bytes; `raw()` hands over the bytes after the frames read so far.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'
import { onAbort } from '../core/abort.js'
import { ClosedError, ProtocolError } from '../core/errors.js'

type Source = AsyncIterable<Uint8Array | Uint8ArrayList>

function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 128); len++ }
  return len
}

/** The varint prefix of a frame of `length` bytes. */
export function framePrefix (length: number): Uint8Array {
  const out = new Uint8Array(varintLength(length))
  let i = 0
  let n = length
  while (n >= 0x80) { out[i++] = (n & 0x7f) | 0x80; n = Math.floor(n / 128) }
  out[i] = n
  return out
}

/**
 * Waits until `stream` can take more data.
 *
 * Not `stream.onDrain()`: in @libp2p/utils 7.4 it keeps the promise of the first drain after
 * resolving it, so every later call returns at once while `writableNeedsDrain` is still true,
 * and a `while (needsDrain) await onDrain()` loop spins on microtasks and starves the event
 * loop. Listening for the next 'drain' event (or 'close') is exact.
 */
export async function waitForDrain (stream: Stream, options: { signal?: AbortSignal } = {}): Promise<void> {
  while (stream.writableNeedsDrain) {
    options.signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        stream.removeEventListener('drain', onDrain)
        stream.removeEventListener('close', onClose)
        cancelAbort()
      }
      const onDrain = (): void => { cleanup(); resolve() }
      const onClose = (evt: Event): void => {
        cleanup()
        reject((evt as Event & { error?: Error }).error ?? new Error('stream closed while waiting to write'))
      }
      stream.addEventListener('drain', onDrain)
      stream.addEventListener('close', onClose)
      const cancelAbort = onAbort(options.signal, () => { cleanup(); reject(options.signal?.reason ?? new Error('aborted')) })
    })
  }
}

/** A frame holding `payload`: its length prefix, then the payload (not copied when large). */
export function frame (payload: Uint8Array): Uint8Array | Uint8ArrayList {
  if (payload.length >= 4096) return new Uint8ArrayList(framePrefix(payload.length), payload)
  const prefix = framePrefix(payload.length)
  const out = new Uint8Array(prefix.length + payload.length)
  out.set(prefix)
  out.set(payload, prefix.length)
  return out
}

/**
 * Queues one frame on `stream`, waiting first while the stream asks writers to drain. The
 * payload is not copied (libp2p keeps a reference: don't reuse it after sending).
 */
export async function writeFrame (stream: Stream, payload: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
  await waitForDrain(stream, options)
  stream.send(frame(payload))
}

/**
 * The data arriving on `stream`, for a reader that may `pause()` the stream. The stream's own
 * iterator ends as soon as the remote closes its side, dropping what arrived while the stream
 * was paused; this one ends only once that has been delivered too (after `resume()`).
 * Everything that arrives is queued, read or not: `onArrive` counts it as it arrives, so a
 * receiver can hold the sender to a limit before the reader catches up.
 */
export async function * incoming (stream: Stream, onArrive?: (n: number) => void): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  const queue: Array<Uint8Array | Uint8ArrayList> = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const onMessage = (evt: Event): void => {
    const data = (evt as Event & { data: Uint8Array | Uint8ArrayList }).data
    queue.push(data)
    onArrive?.(data.byteLength)
    wake?.()
  }
  // 'end' comes once nothing is buffered and nothing more will arrive (unlike 'remoteCloseWrite').
  const onEnd = (): void => { ended = true; wake?.() }
  const onClose = (evt: Event): void => { failure = (evt as Event & { error?: Error }).error; ended = true; wake?.() }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  try {
    // A stream reset before we listened ends with an error, not as if the remote had finished:
    // a reader would take a transfer cut by a lost connection for a peer that sent too little.
    if (stream.status === 'reset' || stream.status === 'aborted') {
      failure = new ClosedError(`the stream was ${stream.status === 'reset' ? 'reset' : 'aborted'} before it was read to the end`)
      ended = true
    }
    // A closed stream may still hold data, which adding the listener delivers (then 'end' comes).
    if (stream.readableEnded || (stream.status !== 'open' && stream.readBufferLength === 0)) ended = true
    for (;;) {
      const next = queue.shift()
      if (next !== undefined) { yield next; continue }
      if (failure != null) throw failure
      if (ended) return
      await new Promise<void>(resolve => { wake = resolve })
      wake = undefined
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
  }
}

/** Writes raw bytes with backpressure. */
export async function writeRaw (stream: Stream, data: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
  await waitForDrain(stream, options)
  stream.send(data)
}

/** Reads frames from a stream (or any byte source). */
export class FrameReader {
  private readonly buffer = new Uint8ArrayList()
  private readonly iterator: AsyncIterator<Uint8Array | Uint8ArrayList>
  private ended = false

  /**
   * @param onData called with the size of every piece read from the source (progress for an
   * idle watchdog, byte counters), so callers need no extra generator layer per chunk.
   */
  constructor (source: Source, private readonly maxFrame: number, private readonly onData?: (n: number) => void) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /** Bytes read from the source and not yet returned: the start of the next frame, or raw bytes. */
  get buffered (): number { return this.buffer.byteLength }

  /** Pulls one more piece from the source; false at its end. */
  private async pull (): Promise<boolean> {
    if (this.ended) return false
    const { done, value } = await this.iterator.next()
    if (done === true) { this.ended = true; return false }
    this.onData?.(value.byteLength)
    this.buffer.append(value)
    return true
  }

  /** Tries to parse a varint at the front of the buffer: [length, prefix bytes] or undefined. */
  private peekLength (): [number, number] | undefined {
    let value = 0
    let mul = 1
    const n = Math.min(this.buffer.byteLength, 8)
    for (let i = 0; i < n; i++) {
      const b = this.buffer.get(i)
      value += (b & 0x7f) * mul
      if (value > this.maxFrame) throw new ProtocolError(`frame of ${value}+ bytes exceeds the limit of ${this.maxFrame}`)
      if ((b & 0x80) === 0) return [value, i + 1]
      mul *= 128
    }
    if (this.buffer.byteLength >= 8) throw new ProtocolError('frame length varint is too long')
    return undefined
  }

  /** The next frame, or undefined when the source ends cleanly between frames. */
  async next (): Promise<Uint8Array | undefined> {
    for (;;) {
      const parsed = this.peekLength()
      if (parsed != null) {
        const [length, prefix] = parsed
        if (this.buffer.byteLength >= prefix + length) {
          const frame = this.buffer.subarray(prefix, prefix + length)
          this.buffer.consume(prefix + length)
          return frame
        }
      }
      if (!(await this.pull())) {
        if (this.buffer.byteLength === 0) return undefined
        throw new ProtocolError(`stream ended inside a frame (${this.buffer.byteLength} bytes buffered)`)
      }
    }
  }

  /** The raw bytes after the frames read so far, to the end of the source. */
  async * raw (): AsyncGenerator<Uint8Array> {
    if (this.buffer.byteLength > 0) {
      const rest = this.buffer.subarray()
      this.buffer.consume(this.buffer.byteLength)
      yield rest
    }
    while (!this.ended) {
      const { done, value } = await this.iterator.next()
      if (done === true) { this.ended = true; break }
      this.onData?.(value.byteLength)
      if (value instanceof Uint8Array) yield value
      else for (const part of value) yield part
    }
  }
}
