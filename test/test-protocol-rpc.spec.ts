import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { streamPair } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { NotFoundError } from '../src/core/errors.js'
import { KIND, RESPONSE } from '../src/protocol/constants.js'
import { FrameReader, frame, framePrefix, incoming } from '../src/protocol/framing.js'
import { MessageReader, decodeError, decodeStatResponse, encodeError, encodeOk, encodeStatResponse, statBody } from '../src/protocol/messages.js'
import { RpcChannel, type RequestHandler } from '../src/protocol/rpc.js'

const tick = async (ms = 0): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const refuseAll: RequestHandler = async () => { throw new Error('no requests expected') }

/** Two channels over an in-memory stream pair: `client` asks, `server` answers with `handler`. */
async function pair (handler: RequestHandler, options: { maxInflight?: number, requestTimeout?: number } = {}): Promise<{ client: RpcChannel, server: RpcChannel, errors: Error[] }> {
  const [a, b] = await streamPair()
  const errors: Error[] = []
  const server = new RpcChannel(b, handler, { maxInflight: options.maxInflight, onProtocolError: (err) => errors.push(err) })
  const client = new RpcChannel(a, refuseAll, { requestTimeout: options.requestTimeout })
  return { client, server, errors }
}

describe('protocol rpc channel', () => {
  describe('request', () => {
    it('allocates distinct non-zero ids and matches answers given out of order to their callers', async () => {
      const ids: number[] = []
      const { client, server } = await pair(async (msg) => {
        ids.push(msg.id)
        const n = msg.u16()
        // Later requests are answered first.
        await tick(50 - n * 10)
        return encodeStatResponse(msg.id, Array.from({ length: n }, () => n))
      })
      const answers = await Promise.all([1, 2, 3, 4].map(async n => {
        const reply = await client.request(KIND.STAT, statBody(Array.from({ length: n }, () => new Uint8Array(32))))
        return reply.u16()
      }))
      assert.deepEqual(answers, [1, 2, 3, 4])
      assert.equal(new Set(ids).size, 4)
      assert.ok(ids.every(id => id !== 0))
      await client.close(); await server.close()
    })

    it('rejects with the typed error an ERROR answer names', async () => {
      const { client, server } = await pair(async () => { throw new NotFoundError('not here') })
      await assert.rejects(client.request(KIND.STAT, statBody([])), { name: 'NotFoundError', message: 'not here' })
      await client.close(); await server.close()
    })

    it('rejects an answer of another kind than the request with ProtocolError', async () => {
      const { client, server } = await pair(async (msg) => encodeOk(KIND.DELETE, msg.id))
      await assert.rejects(client.request(KIND.STAT, statBody([])), { name: 'ProtocolError', message: /expected an answer of kind 0x81, got 0x84/ })
      await client.close(); await server.close()
    })

    it('times out a request that gets no answer, and the channel goes on', async () => {
      let first = true
      const { client, server } = await pair(async (msg) => {
        if (first) { first = false; await tick(500) }
        return encodeStatResponse(msg.id, [])
      }, { requestTimeout: 100 })
      await assert.rejects(client.request(KIND.STAT, statBody([])), { name: 'TimeoutError' })
      const reply = await client.request(KIND.STAT, statBody([]))
      assert.equal(reply.kind, KIND.STAT | RESPONSE)
      await client.close(); await server.close()
    })

    it('an abort rejects the wait with AbortError at once', async () => {
      const { client, server } = await pair(async (msg) => { await tick(1000); return encodeStatResponse(msg.id, []) })
      const controller = new AbortController()
      const asking = client.request(KIND.STAT, statBody([]), { signal: controller.signal })
      controller.abort()
      await assert.rejects(asking, { name: 'AbortError' })
      client.abort(new Error('done')); server.abort(new Error('done'))
    })

    it('rejects requests in flight when the stream closes, and later ones at once', async () => {
      const { client, server } = await pair(async (msg) => { await tick(1000); return encodeStatResponse(msg.id, []) })
      const asking = client.request(KIND.STAT, statBody([]))
      await tick(10)
      server.abort(new Error('test: gone'))
      await assert.rejects(asking)
      await tick(10)
      assert.equal(client.open, false)
      await assert.rejects(client.request(KIND.STAT, statBody([])))
    })
  })

  describe('answering', () => {
    it('answers a malformed body with an ERROR for its id, and the channel goes on', async () => {
      const { client, server, errors } = await pair(async (msg) => { msg.u16(); msg.end(); return encodeStatResponse(msg.id, []) })
      await assert.rejects(client.request(KIND.STAT, Uint8Array.of(0, 0, 9)), { name: 'ProtocolError', message: /trailing/ })
      assert.equal(errors.length, 1, 'the violation is reported')
      assert.equal((await client.request(KIND.STAT, statBody([]))).kind, KIND.STAT | RESPONSE)
      await client.close(); await server.close()
    })

    it('answers at most maxInflight requests at once; the rest wait', async () => {
      let running = 0
      let most = 0
      const { client, server } = await pair(async (msg) => {
        running++
        most = Math.max(most, running)
        await tick(20)
        running--
        return encodeStatResponse(msg.id, [])
      }, { maxInflight: 2 })
      await Promise.all(Array.from({ length: 10 }, async () => await client.request(KIND.STAT, statBody([]))))
      assert.equal(most, 2)
      await client.close(); await server.close()
    })
  })

  describe('coalescing', () => {
    /** Counts the writes (`send` calls) made on `stream`. */
    function countSends (stream: Stream): { sends: number } {
      const count = { sends: 0 }
      const send = stream.send.bind(stream)
      stream.send = (data) => { count.sends++; return send(data) }
      return count
    }

    it('sends the small requests made in one tick as one write, and their answers too', async () => {
      const [a, b] = await streamPair()
      const out = countSends(a)
      const back = countSends(b)
      const server = new RpcChannel(b, async (msg) => encodeStatResponse(msg.id, [msg.u16()]))
      const client = new RpcChannel(a, refuseAll)
      const answers = await Promise.all(Array.from({ length: 100 }, async (_, n) => {
        const reply = await client.request(KIND.STAT, statBody(Array.from({ length: n % 3 }, () => new Uint8Array(32))))
        return decodeStatResponse(reply)[0]
      }))
      // Every caller got its own answer (the server echoes the count of digests it was sent).
      assert.deepEqual(answers, Array.from({ length: 100 }, (_, n) => n % 3))
      assert.equal(out.sends, 1)
      assert.ok(back.sends <= 2, `${back.sends} writes for 100 answers`)
      await client.close(); await server.close()
    })
  })

  describe('stream-level violations', () => {
    async function rawPeer (): Promise<{ raw: Stream, server: RpcChannel, errors: Error[], answers: FrameReader }> {
      const [a, b] = await streamPair()
      const errors: Error[] = []
      const server = new RpcChannel(b, async (msg) => encodeStatResponse(msg.id, []), { onProtocolError: (err) => errors.push(err) })
      return { raw: a, server, errors, answers: new FrameReader(incoming(a), 1 << 20) }
    }

    it('answers a frame longer than the limit with ERROR id 0 and resets the stream, before buffering it', async () => {
      const { raw, server, errors, answers } = await rawPeer()
      raw.send(framePrefix(64 * 1024 * 1024))
      const reply = new MessageReader((await answers.next())!)
      assert.equal(reply.kind, KIND.ERROR)
      assert.equal(reply.id, 0)
      assert.equal(decodeError(reply).code, 'ERR_PROTOCOL')
      await tick(20)
      assert.equal(server.open, false)
      assert.equal(errors.length, 1)
    })

    it('resets on a message shorter than its header', async () => {
      const { raw, server, errors } = await rawPeer()
      raw.send(frame(Uint8Array.of(KIND.STAT, 0, 0)))
      await tick(30)
      assert.equal(server.open, false)
      assert.match(errors[0].message, /shorter than its 5-byte header/)
    })

    it('ignores answers to ids it never asked, and ERRORs with id 0 that name no request', async () => {
      const { raw, server, answers } = await rawPeer()
      raw.send(frame(encodeStatResponse(77, [])))
      raw.send(frame(encodeError(0, 'ERR_PROTOCOL', 'noise')))
      raw.send(frame(new Uint8Array([KIND.STAT, 0, 0, 0, 5, 0, 0])))
      const reply = new MessageReader((await answers.next())!)
      assert.equal(reply.kind, KIND.STAT | RESPONSE)
      assert.equal(reply.id, 5)
      assert.equal(server.open, true)
      raw.abort(new Error('done'))
    })
  })
})
