import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { streamPair } from '@libp2p/utils'
import { CreditGate, CreditGrantor } from '../src/protocol/flow.js'
import { FrameReader, incoming } from '../src/protocol/framing.js'
import { MessageReader, decodeCredit } from '../src/protocol/messages.js'
import { KIND } from '../src/protocol/constants.js'
import { pseudoRandom } from './helpers.js'

const tick = async (ms = 0): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('protocol flow control', () => {
  describe('CreditGate', () => {
    it('lets a sender use its window at once, then makes it wait for a grant', async () => {
      const gate = new CreditGate(100)
      assert.equal(await gate.take(60), 60)
      assert.equal(await gate.take(60), 40, 'a piece past the credit is cut at the credit')
      let got: number | undefined
      const waiting = gate.take(10).then(n => { got = n })
      await tick()
      assert.equal(got, undefined, 'no credit left: the sender waits')
      gate.grant(105)
      await waiting
      assert.equal(got, 5)
    })

    it('ignores a grant that does not grow', async () => {
      const gate = new CreditGate(10)
      await gate.take(10)
      gate.grant(5)
      gate.grant(10)
      let done = false
      void gate.take(1).then(() => { done = true }, () => {})
      await tick()
      assert.equal(done, false)
      gate.fail(new Error('over'))
    })

    it('sends a piece in as many parts as the credit requires', async () => {
      const gate = new CreditGate(4)
      const parts: number[] = []
      const data = pseudoRandom(10, 1)
      const sending = gate.send(data, async (piece) => { parts.push(piece.length) })
      await tick()
      assert.deepEqual(parts, [4])
      gate.grant(8)
      await tick()
      gate.grant(100)
      await sending
      assert.deepEqual(parts, [4, 4, 2])
    })

    it('end(): sending within the credit goes on, a wait for more fails instead of hanging', async () => {
      const gate = new CreditGate(10)
      gate.end(new Error('no more credit'))
      assert.equal(await gate.take(10), 10)
      await assert.rejects(gate.take(1), /no more credit/)
    })

    it('fail(): a waiting sender and every later one fail', async () => {
      const gate = new CreditGate(0)
      const waiting = gate.take(1)
      gate.fail(new Error('reset'))
      await assert.rejects(waiting, /reset/)
      await assert.rejects(gate.take(1), /reset/)
    })
  })

  describe('CreditGrantor', () => {
    it('resets a sender that goes past its credit, counting bytes as they arrive', async () => {
      const [sender, receiver] = await streamPair()
      const source = incoming(receiver)
      const first = source.next() // the reader's listener exists before the grantor's
      const grantor = new CreditGrantor(receiver, 0, 1000)
      for (let i = 0; i < 5; i++) sender.send(new Uint8Array(250))
      sender.close().catch(() => {})
      // Nothing is consumed meanwhile: no credit beyond the window is granted.
      await tick(30)
      assert.equal(receiver.status, 'aborted', 'the receiver resets a sender past its credit as the bytes arrive, before they are read')
      let consumed = 0
      async function * all (): AsyncGenerator<Uint8Array> {
        const r = await first
        if (r.done !== true) yield r.value.subarray()
        for await (const p of source) yield p.subarray()
      }
      // 1250 bytes sent against a window of 1000 before any grant: past its credit.
      await assert.rejects((async () => { for await (const p of grantor.counting(all())) consumed += p.length })(),
        { name: 'ProtocolError', message: /past its credit of 1000/ })
      assert.ok(consumed <= 1000, `consumed ${consumed} bytes past the credit`)
    })

    it('sends CREDIT totals of consumed + window once half a window is used, and the sender may then go on', async () => {
      const [sender, receiver] = await streamPair()
      const gate = new CreditGate(1000)
      const senderFrames = new FrameReader(incoming(sender), 1000)
      void (async () => {
        for (let f = await senderFrames.next(); f != null; f = await senderFrames.next()) gate.grant(decodeCredit(new MessageReader(f)))
      })().catch(() => {})
      const source = incoming(receiver)
      const first = source.next()
      const grantor = new CreditGrantor(receiver, 0, 1000)
      const total = 5000
      const sending = (async () => {
        await gate.send(new Uint8Array(total), async (piece) => { sender.send(piece.slice()) })
        await sender.close()
      })()
      let consumed = 0
      async function * all (): AsyncGenerator<Uint8Array> {
        const r = await first
        if (r.done !== true) yield r.value.subarray()
        for await (const p of source) yield p.subarray()
      }
      for await (const p of grantor.counting(all())) consumed += p.length
      await sending
      assert.equal(consumed, total, 'every byte arrived, within the credit granted as it was consumed')
      await receiver.close()
    })
  })
})
