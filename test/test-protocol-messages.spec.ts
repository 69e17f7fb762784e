import { strict as assert } from 'node:assert'
import { KIND, MAX_BATCH, RESPONSE } from '../src/protocol/constants.js'
import {
  GET_INLINE, GET_USE_BLOB, MessageReader, U64_NONE, decodeCredit, decodeDigests, decodeError, decodeEvict, decodeGet,
  decodeGetAnswer, decodeList, decodeListResponse, decodePutHead, decodeStatResponse, encodeCredit, encodeError,
  encodeEvict, encodeEvictResponse, encodeGet, encodeGetInline, encodeGetPartial, encodeGetUseBlob, encodeList,
  encodeListResponse, encodePut, encodePutHead, encodeStat, encodeStatResponse, withHeader, decodeReport, reportBody
} from '../src/protocol/messages.js'
import { pseudoRandom } from './helpers.js'

const d = (seed: number): Uint8Array => pseudoRandom(32, seed)
const read = (m: Uint8Array): MessageReader => new MessageReader(m)

/** Throws ProtocolError, by name. */
function refuses (fn: () => unknown, what?: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.equal(err.name, 'ProtocolError')
    if (what != null) assert.match(err.message, what)
    return true
  })
}

describe('protocol messages', () => {
  describe('request codecs', () => {
    it('round-trips STAT and EVICT digest lists, and their header', () => {
      const keys = [d(1), d(2), d(3)]
      const stat = read(encodeStat(7, keys))
      assert.equal(stat.kind, KIND.STAT)
      assert.equal(stat.id, 7)
      assert.deepEqual(decodeDigests(stat), keys)
      const evict = read(encodeEvict(9, keys))
      assert.equal(evict.kind, KIND.EVICT)
      assert.deepEqual(decodeEvict(evict), keys)
      const ok = read(encodeEvictResponse(9))
      assert.equal(ok.kind, KIND.EVICT | RESPONSE)
      assert.equal(ok.id, 9)
      ok.end()
    })

    it('decodeEvict copies the keys out of the frame and refuses another kind', () => {
      const frame = encodeEvict(1, [d(4)])
      const [key] = decodeEvict(read(frame))
      frame.fill(0)
      assert.deepEqual(key, d(4))
      refuses(() => decodeEvict(read(encodeStat(1, [d(4)]))), /expected EVICT/)
    })

    it('round-trips GET with its three flags, and "to the end" as the none value', () => {
      for (const [inline, partial, swarm] of [[false, false, false], [true, false, false], [true, true, false], [false, true, false], [true, true, true], [false, false, true]]) {
        const req = decodeGet(read(encodeGet(3, { digest: d(5), offset: 2 ** 40, length: U64_NONE, inline, partial, swarm })))
        assert.deepEqual(req, { digest: d(5), offset: 2 ** 40, length: U64_NONE, inline, partial, swarm })
      }
    })

    it('round-trips PUT heads with and without a digest or size', () => {
      assert.deepEqual(decodePutHead(read(encodePutHead({ digest: d(6), size: 123 }))), { digest: d(6), size: 123 })
      assert.deepEqual(decodePutHead(read(encodePutHead({}))), { digest: undefined, size: undefined })
    })

    it('an inline PUT is the digest, then the value', () => {
      const value = pseudoRandom(5000, 7)
      const msg = read(encodePut(4, d(7), value))
      assert.deepEqual(msg.digest(), d(7))
      assert.deepEqual(msg.rest(), value)
    })

    it('round-trips LIST with and without a cursor, and caps a limit above MAX_BATCH instead of refusing it', () => {
      assert.deepEqual(decodeList(read(encodeList(1, { limit: 10 }))), { after: undefined, limit: 10 })
      assert.deepEqual(decodeList(read(encodeList(1, { after: d(8), limit: 0 }))), { after: d(8), limit: 0 })
      assert.equal(decodeList(read(encodeList(1, { limit: 0xffff }))).limit, MAX_BATCH)
    })

    it('round-trips REPORT, and refuses "none" in its range', () => {
      assert.deepEqual(decodeReport(read(withHeader(KIND.REPORT, 2, reportBody({ digest: d(12), offset: 16384, length: 1 << 20 })))), { digest: d(12), offset: 16384, length: 1 << 20 })
      refuses(() => decodeReport(read(withHeader(KIND.REPORT, 2, reportBody({ digest: d(12), offset: U64_NONE, length: 1 })))), /none/)
    })

    it('round-trips CREDIT and ERROR', () => {
      assert.equal(decodeCredit(read(encodeCredit(2 ** 50))), 2 ** 50)
      assert.deepEqual(decodeError(read(encodeError(5, 'ERR_NOT_FOUND', 'gone é'))), { code: 'ERR_NOT_FOUND', message: 'gone é' })
    })
  })

  describe('answer codecs', () => {
    it('round-trips STAT and LIST answers, absent sizes as the none value', () => {
      assert.deepEqual(decodeStatResponse(read(encodeStatResponse(1, [0, undefined, 2 ** 53 - 1]))), [0, undefined, 2 ** 53 - 1])
      const entries = [{ digest: d(9), size: 1 }, { digest: d(10), size: 2 }]
      assert.deepEqual(decodeListResponse(read(encodeListResponse(1, entries, true))), { entries, more: true })
    })

    it('round-trips the three GET answers: inline, partial (size, covered, start) and use-a-blob-stream', () => {
      const start = pseudoRandom(100, 11)
      assert.deepEqual(decodeGetAnswer(read(encodeGetInline(1, 70, start))), { mode: GET_INLINE, size: 70, encoded: start })
      assert.deepEqual(decodeGetAnswer(read(encodeGetPartial(1, 2 ** 30, 245760, start))), { mode: GET_USE_BLOB, size: 2 ** 30, covered: 245760, encoded: start })
      assert.deepEqual(decodeGetAnswer(read(encodeGetUseBlob(1, 5))), { mode: GET_USE_BLOB, size: 5, covered: 0, encoded: new Uint8Array(0) })
    })
  })

  describe('malformed input', () => {
    it('refuses a message shorter than its 5-byte header', () => {
      refuses(() => read(Uint8Array.of(1, 0, 0, 0)), /shorter than its 5-byte header/)
    })

    it('refuses a truncated body and trailing bytes', () => {
      const stat = encodeStat(1, [d(1)])
      refuses(() => decodeDigests(read(stat.subarray(0, stat.length - 1))), /truncated/)
      refuses(() => decodeDigests(read(Uint8Array.of(...stat, 0))), /trailing/)
    })

    it('refuses a batch above MAX_BATCH from its count alone', () => {
      const msg = withHeader(KIND.STAT, 1, Uint8Array.of((MAX_BATCH + 1) >> 8, (MAX_BATCH + 1) & 0xff))
      refuses(() => decodeDigests(read(msg)), /exceeds the limit/)
      refuses(() => decodeStatResponse(read(withHeader(KIND.STAT | RESPONSE, 1, Uint8Array.of(0xff, 0xff)))), /exceeds the limit/)
    })

    it('refuses u64 fields at or above 2^53 (other than the none value)', () => {
      const get = encodeGet(1, { digest: d(1), offset: 0, length: 5, inline: true })
      get.set([0x00, 0x20, 0, 0, 0, 0, 0, 0], 5 + 32) // offset 2^53
      refuses(() => decodeGet(read(get)), /above 2\^53/)
    })

    it('refuses a GET from offset "none", with unknown flag bits, and a LIST cursor flag above 1', () => {
      refuses(() => decodeGet(read(encodeGet(1, { digest: d(1), offset: U64_NONE, length: 5, inline: true }))), /offset/)
      const get = encodeGet(1, { digest: d(1), offset: 0, length: 5, inline: true })
      get[get.length - 1] = 0x09
      refuses(() => decodeGet(read(get)), /unknown bits/)
      refuses(() => decodeList(read(withHeader(KIND.LIST, 1, Uint8Array.of(2, 0, 1)))), /cursor flag/)
    })

    it('refuses GET answers of an unknown mode, without a size, or whose start and its length disagree', () => {
      refuses(() => decodeGetAnswer(read(withHeader(KIND.GET | RESPONSE, 1, Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0, 1)))), /mode/)
      refuses(() => decodeGetAnswer(read(encodeGetInline(1, U64_NONE, new Uint8Array(0)))), /size/)
      refuses(() => decodeGetAnswer(read(encodeGetPartial(1, 100, 0, Uint8Array.of(1)))), /disagree/)
      refuses(() => decodeGetAnswer(read(encodeGetPartial(1, 100, 5, new Uint8Array(0)))), /disagree/)
      refuses(() => decodeGetAnswer(read(withHeader(KIND.GET | RESPONSE, 1, Uint8Array.of(GET_USE_BLOB, 0, 0, 0, 0, 0, 0, 0, 1)))), /truncated/)
    })

    it('refuses a CREDIT of "none" and a PUT head flag above 1', () => {
      refuses(() => decodeCredit(read(encodeCredit(U64_NONE))), /none/)
      const head = encodePutHead({})
      head[5] = 2
      refuses(() => decodePutHead(read(head)), /flags/)
    })

    it('an encoder refuses more keys than one message may carry', () => {
      assert.throws(() => encodeEvict(1, Array.from({ length: MAX_BATCH + 1 }, () => d(1))), RangeError)
    })
  })
})
