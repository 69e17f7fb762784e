import { strict as assert } from 'node:assert'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { installYamuxWindowRule } from '../src/peers/yamux-window.js'

/** Frames a stream sent (type, flag, length), through its own sendFrame. */
interface Sent { type: number, flag: number, length: number }

/**
 * A YamuxStream's state as the library's window code reads it, on the real prototype: the
 * library's own sendWindowUpdate runs on it wherever the rule defers to it.
 */
function stream (state: StreamState, recvWindow: number, recvWindowCapacity: number): { s: { sendWindowUpdate: () => void, recvWindowCapacity: number, recvWindow: number }, sent: Sent[] } {
  const sent: Sent[] = []
  const s = Object.assign(Object.create(YamuxStream.prototype), {
    streamId: 1,
    state,
    recvWindow,
    recvWindowCapacity,
    maxStreamWindowSize: 16 * 2 ** 20,
    epochStart: Date.now(),
    getRTT: () => -1,
    sendFrame: (header: Sent) => { sent.push({ type: header.type, flag: header.flag, length: header.length }) }
  })
  return { s, sent }
}

const WINDOW = 256 * 1024

describe('yamux window updates at half the window (src/peers/yamux-window.ts)', () => {
  before(() => { installYamuxWindowRule() })

  it('sends none while half the receive window or more is still open', () => {
    for (const used of [1, 100, 64 * 1024, WINDOW / 2]) {
      const { s, sent } = stream(StreamState.Established, WINDOW, WINDOW - used)
      s.sendWindowUpdate()
      assert.deepEqual(sent, [], `${used} bytes used`)
      assert.equal(s.recvWindowCapacity, WINDOW - used)
    }
  })

  it('gives the whole used window back in one update once more than half is used', () => {
    const used = WINDOW / 2 + 1
    const { s, sent } = stream(StreamState.Established, WINDOW, WINDOW - used)
    s.sendWindowUpdate()
    assert.equal(sent.length, 1)
    assert.equal(sent[0].flag, 0)
    assert.equal(sent[0].length, used)
    assert.equal(s.recvWindowCapacity, WINDOW)
  })

  it('still sends a new stream\'s SYN or ACK at once, and grants nothing while paused', () => {
    const syn = stream(StreamState.Init, WINDOW, WINDOW)
    syn.s.sendWindowUpdate()
    assert.equal(syn.sent.length, 1)
    assert.notEqual(syn.sent[0].flag, 0)
    const ack = stream(StreamState.SYNReceived, WINDOW, WINDOW - 10)
    ack.s.sendWindowUpdate()
    assert.equal(ack.sent.length, 1)
    assert.notEqual(ack.sent[0].flag, 0)
    const paused = stream(StreamState.Paused, WINDOW, 0)
    paused.s.sendWindowUpdate()
    assert.deepEqual(paused.sent, [])
  })

  it('is installed once, however often it is called', () => {
    const before = (YamuxStream.prototype as unknown as { sendWindowUpdate: unknown }).sendWindowUpdate
    installYamuxWindowRule()
    assert.equal((YamuxStream.prototype as unknown as { sendWindowUpdate: unknown }).sendWindowUpdate, before)
  })
})
