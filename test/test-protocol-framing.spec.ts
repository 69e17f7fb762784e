import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { streamPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameReader, frame, framePrefix, incoming } from '../src/protocol/framing.js'
import { pseudoRandom } from './helpers.js'

/** The bytes of `frames`, cut into pieces of `size` bytes. */
function * pieces (bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, o + size)
}

function concat (...parts: Array<Uint8Array | Uint8ArrayList>): Uint8Array {
  return new Uint8ArrayList(...parts).subarray()
}

async function * source (parts: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> { yield * parts }

describe('protocol framing', () => {
  describe('FrameReader.next', () => {
    it('reassembles frames split into single bytes, and several frames in one piece', async () => {
      const a = pseudoRandom(300, 1)
      const b = pseudoRandom(5000, 2)
      const bytes = concat(frame(a), frame(new Uint8Array(0)), frame(b))
      for (const size of [1, 7, bytes.length]) {
        const reader = new FrameReader(source(pieces(bytes, size)), 10_000)
        assert.deepEqual(await reader.next(), a)
        assert.deepEqual(await reader.next(), new Uint8Array(0))
        assert.deepEqual(await reader.next(), b)
        assert.equal(await reader.next(), undefined, 'a clean end between frames')
      }
    })

    it('refuses a frame over its limit as soon as the length is read, before pulling its body', async () => {
      let pulledAfterPrefix = false
      async function * announce (): AsyncGenerator<Uint8Array> {
        yield framePrefix(1025)
        pulledAfterPrefix = true
        yield new Uint8Array(1025)
      }
      const reader = new FrameReader(announce(), 1024)
      await assert.rejects(reader.next(), { name: 'ProtocolError', message: /exceeds the limit of 1024/ })
      assert.equal(pulledAfterPrefix, false)
    })

    it('refuses a length varint longer than 8 bytes', async () => {
      const reader = new FrameReader(source([new Uint8Array(9).fill(0x80)]), Number.MAX_SAFE_INTEGER)
      await assert.rejects(reader.next(), { name: 'ProtocolError', message: /varint is too long/ })
    })

    it('refuses a source that ends inside a frame', async () => {
      const bytes = frame(pseudoRandom(100, 3)) as Uint8Array
      const reader = new FrameReader(source([bytes.subarray(0, 50)]), 1000)
      await assert.rejects(reader.next(), { name: 'ProtocolError', message: /ended inside a frame \(50 bytes buffered\)/ })
    })

    it('reports the size of every piece read through onData', async () => {
      const seen: number[] = []
      const reader = new FrameReader(source(pieces(concat(frame(new Uint8Array(10))), 4)), 100, n => seen.push(n))
      await reader.next()
      assert.deepEqual(seen, [4, 4, 3])
    })
  })

  describe('FrameReader.raw', () => {
    it('hands over the bytes after the frames read, those already buffered first', async () => {
      const head = pseudoRandom(20, 4)
      const body = pseudoRandom(10_000, 5)
      const reader = new FrameReader(source(pieces(concat(frame(head), body), 333)), 100)
      assert.deepEqual(await reader.next(), head)
      const out: Uint8Array[] = []
      for await (const part of reader.raw()) out.push(part)
      assert.deepEqual(concat(...out), body)
    })
  })

  describe('incoming', () => {
    it('delivers what arrived while the stream was paused, after the remote closed', async () => {
      const [a, b] = await streamPair()
      b.pause()
      a.send(Uint8Array.of(1, 2, 3))
      a.send(Uint8Array.of(4))
      await a.close()
      await new Promise(resolve => setTimeout(resolve, 20))
      const got: number[] = []
      const reading = (async () => { for await (const part of incoming(b)) got.push(...part.subarray()) })()
      b.resume()
      await reading
      assert.deepEqual(got, [1, 2, 3, 4])
    })

    it('ends with the error of a reset, even while the reader waits', async () => {
      const [a, b] = await streamPair()
      const reading = (async () => { for await (const part of incoming(b)) assert.ok(part.byteLength > 0) })()
      a.send(Uint8Array.of(1))
      await new Promise(resolve => setTimeout(resolve, 20))
      a.abort(new Error('test reset'))
      await assert.rejects(reading)
    })
  })
})
