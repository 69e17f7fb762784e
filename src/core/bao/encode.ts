/**
 * The sending side of verified streaming: turns a value and its outboard into the verified
 * stream of a byte range (bao's slice format; the whole range gives bao's combined encoding).
 */
import { throwIfAborted } from '../abort.js'
import { StorageError } from '../errors.js'
import type { BlobReader } from '../store/interface.js'
import { DEFAULT_GROUP_LOG, HEADER_LEN, PARENT_LEN, TreeHasher, decodeHeader, outboardLength } from '../tree.js'
import { scatterEncode, uninitialised } from './scatter.js'
import { DEFAULT_BATCH_BYTES, checkIntegerOption, encodedLength, parentOffset, planRange, streamItems, type ByteRange } from './range.js'


export interface EncodeOptions {
  /**
   * Approximate size of each read from the value and of each yielded buffer (default 1 MiB).
   * Rounded up to whole groups for reads. Memory use is about twice this.
   */
  batchBytes?: number
  /**
   * Start reading the next piece of the value while the current one is sent (default true).
   * Needs a reader whose returned buffers stay valid across the following read, as the
   * `BlobReader` contract says unless a reader documents otherwise; pass false for one that
   * returns views into a buffer it reuses.
   */
  readAhead?: boolean
  /** Stops the stream with `AbortError` when aborted. */
  signal?: AbortSignal
  /**
   * Gives the buffer for each yielded piece: `length` bytes that no one else reads or writes
   * until the encoder yields them (or drops them, when the stream stops early). The encoder
   * writes every byte before yielding, so the buffer may hold anything. Default: a fresh one
   * per piece. The provider reuses pieces its receiver has consumed (protocol/piece-pool.ts).
   */
  allocate?: (length: number) => Uint8Array
}

/** The whole-value result of {@link encode}. */
export interface Encoded {
  /** BLAKE3 hash of the value: the root every decoder checks against. */
  root: Uint8Array
  size: number
  /** Header and the pre-order parents (no data). */
  outboard: Uint8Array
  /** Header, then parents and groups' data interleaved in pre-order (bao's combined encoding at groupLog 0). */
  encoded: Uint8Array
}

/** Hashes `data` and builds both its outboard and its combined encoding, at any group size. */
export function encode (data: Uint8Array, groupLog: number = DEFAULT_GROUP_LOG): Encoded {
  const { root, size, outboard } = new TreeHasher({ groupLog, outboard: true }).update(data).finalize()
  if (outboard == null) throw new Error('TreeHasher returned no outboard')
  const encoded = encodeRangeSync(data, outboard, { offset: 0, length: Infinity }, groupLog)
  return { root, size, outboard, encoded }
}

/** Builds the outboard (header and pre-order parents) of `data` and returns it with the root hash. */
export function outboard (data: Uint8Array, groupLog: number = DEFAULT_GROUP_LOG): { root: Uint8Array, outboard: Uint8Array } {
  const r = new TreeHasher({ groupLog, outboard: true }).update(data).finalize()
  if (r.outboard == null) throw new Error('TreeHasher returned no outboard')
  return { root: r.root, outboard: r.outboard }
}

function checkOutboard (outboard: Uint8Array, size: number, groupLog: number): void {
  if (outboard.length < HEADER_LEN) throw new StorageError('outboard is shorter than its header')
  const claimed = decodeHeader(outboard)
  if (claimed !== BigInt(size)) throw new StorageError(`outboard is for ${claimed} bytes, value has ${size}`)
  if (outboard.length !== outboardLength(size, groupLog)) {
    throw new StorageError(`outboard has ${outboard.length} bytes, expected ${outboardLength(size, groupLog)} at groupLog ${groupLog}`)
  }
}

/** Total bytes of the stream {@link encodeRange} produces for `range` of a value of `size` bytes. */
export function encodedRangeLength (size: number, range: ByteRange, groupLog: number = DEFAULT_GROUP_LOG): number {
  return encodedLength(planRange(size, range, groupLog))
}

/** The verified stream of `range` of an in-memory value, as one buffer (bao's slice at groupLog 0). */
export function encodeRangeSync (data: Uint8Array, outboard: Uint8Array, range: ByteRange, groupLog: number = DEFAULT_GROUP_LOG): Uint8Array {
  const plan = planRange(data.length, range, groupLog)
  checkOutboard(outboard, data.length, groupLog)
  const out = new Uint8Array(encodedLength(plan))
  out.set(outboard.subarray(0, HEADER_LEN), 0)
  let pos = HEADER_LEN
  for (const item of streamItems(plan)) {
    if (item.kind === 'parent') {
      const at = parentOffset(item.index)
      out.set(outboard.subarray(at, at + PARENT_LEN), pos)
      pos += PARENT_LEN
    } else {
      out.set(data.subarray(item.start, item.start + item.length), pos)
      pos += item.length
    }
  }
  if (pos !== out.length) throw new Error(`encoder wrote ${pos} bytes, expected ${out.length}`)
  return out
}

/** Reads the selected groups' data in large sequential pieces, one piece ahead unless told not to. */
class DataCursor {
  private piece: Uint8Array = new Uint8Array(0)
  /**
   * Two buffers the reader may fill, used in turn: a piece is only copied out before the next
   * one is taken, and the read ahead goes into the other buffer.
   */
  private readonly buffers: Uint8Array[] = []
  private turn = 0
  /** Size of those buffers: a piece, or the whole selection when it is smaller. */
  private readonly capacity: number
  private pieceStart = 0
  private next: Promise<Uint8Array> | undefined
  private nextStart: number
  private readonly end: number

  constructor (private readonly reader: BlobReader, start: number, end: number, private readonly pieceLen: number,
    private readonly readAhead: boolean) {
    this.pieceStart = start
    this.nextStart = start
    this.end = end
    this.capacity = Math.min(pieceLen, end - start)
    if (readAhead) this.prefetch()
  }

  private prefetch (): void {
    if (this.nextStart >= this.end) { this.next = undefined; return }
    const len = Math.min(this.pieceLen, this.end - this.nextStart)
    const at = this.nextStart
    const into = this.buffers[this.turn] ??= new Uint8Array(this.capacity)
    this.turn ^= 1
    this.next = this.reader.read(at, len, into).then(bytes => {
      if (bytes.length !== len) throw new StorageError(`short read: ${bytes.length} of ${len} bytes at ${at}`)
      return bytes
    })
    // Avoid an unhandled rejection if the consumer stops before awaiting it.
    this.next.catch(() => {})
    this.nextStart += len
  }

  /** Copies `[start, start + length)` of the value into `sink`, in order. */
  async copy (start: number, length: number, sink: (bytes: Uint8Array) => void): Promise<void> {
    let at = start
    const end = start + length
    while (at < end) {
      if (at >= this.pieceStart + this.piece.length) {
        if (!this.readAhead) this.prefetch()
        if (this.next == null) throw new StorageError('encoder read past the selected data')
        this.pieceStart += this.piece.length
        this.piece = await this.next
        this.next = undefined
        if (this.readAhead) this.prefetch()
        continue
      }
      const from = at - this.pieceStart
      const take = Math.min(end - at, this.piece.length - from)
      sink(this.piece.subarray(from, from + take))
      at += take
    }
  }
}

function asReader (data: Uint8Array): BlobReader {
  return {
    size: data.length,
    read: async (offset, length) => data.subarray(offset, offset + length),
    close: async () => {}
  }
}

/**
 * The verified stream of `range` of a value: the 8-byte header, then in pre-order the parent
 * nodes on the paths to every group overlapping the range, and those groups' data (whole
 * groups: the receiver needs them to verify). Byte-identical to bao's slice format at groupLog 0
 * (and to its combined encoding for the whole range).
 *
 * `data` is read in pieces of about `batchBytes` (whole groups), one piece ahead (see
 * `readAhead`), so a value of any size streams in bounded memory. A reader with `readv` (the
 * filesystem store's) reads the data straight into the yielded buffers (scatter.ts). Yields buffers of about `batchBytes` (the last one
 * shorter) that the encoder never touches again: fresh ones, or those `allocate` gives. The reader is not closed.
 *
 * @throws {StorageError} when the outboard does not belong to a value of this size, or a read is short.
 * @throws {OutOfRangeError} for an invalid range or `batchBytes`.
 */
export async function * encodeRange (data: BlobReader | Uint8Array, outboard: Uint8Array, range: ByteRange,
  groupLog: number = DEFAULT_GROUP_LOG, options: EncodeOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  checkIntegerOption('batchBytes', options.batchBytes, 1)
  const reader = data instanceof Uint8Array ? asReader(data) : data
  const plan = planRange(reader.size, range, groupLog)
  checkOutboard(outboard, reader.size, groupLog)
  const total = encodedLength(plan)
  const batch = Math.max(PARENT_LEN, options.batchBytes ?? DEFAULT_BATCH_BYTES)
  const pieceLen = Math.ceil(batch / plan.groupLen) * plan.groupLen
  const signal = options.signal
  throwIfAborted(signal)

  if (reader.readv !== undefined) {
    yield * scatterEncode(reader as BlobReader & Required<Pick<BlobReader, 'readv'>>, outboard, plan, total, batch,
      options.readAhead !== false, signal, options.allocate ?? uninitialised)
    return
  }

  const allocate = options.allocate ?? ((n: number) => new Uint8Array(n))
  let remaining = total
  let buf = allocate(Math.min(batch, remaining))
  let pos = 0
  const ready: Uint8Array[] = []
  const write = (bytes: Uint8Array): void => {
    let off = 0
    while (off < bytes.length) {
      const take = Math.min(bytes.length - off, buf.length - pos)
      buf.set(off === 0 && take === bytes.length ? bytes : bytes.subarray(off, off + take), pos)
      pos += take
      off += take
      if (pos === buf.length) {
        ready.push(buf)
        remaining -= buf.length
        // Not for the end of the stream: a piece of 0 bytes is never yielded.
        buf = remaining > 0 ? allocate(Math.min(batch, remaining)) : new Uint8Array(0)
        pos = 0
      }
    }
  }

  write(outboard.subarray(0, HEADER_LEN))
  const cursor = new DataCursor(reader, plan.firstGroup * plan.groupLen,
    Math.min(plan.size, (plan.lastGroup + 1) * plan.groupLen), pieceLen, options.readAhead !== false)
  for (const item of streamItems(plan)) {
    if (item.kind === 'parent') {
      const at = parentOffset(item.index)
      write(outboard.subarray(at, at + PARENT_LEN))
    } else {
      await cursor.copy(item.start, item.length, write)
    }
    while (ready.length > 0) {
      throwIfAborted(signal)
      yield ready.shift() as Uint8Array
    }
  }
  if (remaining !== 0 || pos !== 0) throw new Error(`encoder is ${remaining} bytes short of ${total}`)
}
