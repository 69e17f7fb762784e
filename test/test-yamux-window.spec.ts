import { strict as assert } from 'node:assert'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { Stream } from '@libp2p/interface'
import type { DstoreNode } from '../src/peers/node.js'
import { installYamuxWindowRule } from '../src/peers/yamux-window.js'
import { Cleanup } from './net.js'

const MiB = 2 ** 20

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

describe('yamux window updates on a real connection', function () {
  this.timeout(30_000)
  const c = new Cleanup()
  after(async () => { await c.run() })
  const PROTOCOL = '/dstore-test/yamux-window/1.0.0'
  const SIZE = 8 * MiB
  const WINDOW_UPDATE = 1 // yamux's FrameType.WindowUpdate

  /**
   * Sends `size` bytes from a fresh dialer to `receiver` in writes of `piece` bytes, each in a
   * turn of the event loop of its own when `spaced` (so each is a data frame of its own).
   */
  async function send (receiver: DstoreNode, size: number, piece: number, spaced: boolean): Promise<void> {
    const dialer = await c.node()
    const stream = await dialer.dialProtocol(receiver.getMultiaddrs()[0], PROTOCOL)
    for (let sent = 0; sent < size; sent += piece) {
      if (!stream.send(new Uint8Array(piece).fill(7))) await stream.onDrain()
      if (spaced) await new Promise(resolve => setImmediate(resolve))
    }
    await stream.close()
  }

  it('gives the window back once per half window, not once per frame, and delivers every byte', async () => {
    const receiver = await c.node(['/ip4/127.0.0.1/tcp/0'])
    let updates = 0
    let frames = 0
    let received = 0
    let own = true
    const done = new Promise<void>((resolve, reject) => {
      void receiver.handle(PROTOCOL, (stream: Stream) => {
        own = Object.hasOwn(stream, 'sendWindowUpdate') || !(stream instanceof YamuxStream)
        const s = stream as unknown as { sendFrame: (h: { type: number }, data?: unknown) => void, handleData: (f: unknown) => void }
        const sendFrame = s.sendFrame
        s.sendFrame = (header, data) => { if (header.type === WINDOW_UPDATE) updates++; sendFrame(header, data) }
        const handleData = s.handleData.bind(stream)
        s.handleData = (frame) => { frames++; handleData(frame) }
        void (async () => {
          for await (const chunk of stream) received += chunk.byteLength
        })().then(resolve, reject)
      })
    })
    // 2 MiB in 4 KiB writes, one a turn: hundreds of small data frames, as an rpc stream's requests are.
    const size = 2 * MiB
    await send(receiver, size, 4096, true)
    await done
    assert.equal(own, false, 'the stream is a YamuxStream that takes sendWindowUpdate from the prototype')
    assert.equal(received, size)
    // The library's own rule sends one update per data frame; this one one per half window
    // (128 KiB of a 256 KiB window, or more once the window grew).
    assert.ok(frames >= 100, `${frames} data frames`)
    assert.ok(updates <= size / (128 * 1024) + 2, `${updates} window updates for ${frames} data frames`)
  })

  it('completes a transfer that the receiver paused with a full window, once it resumes', async () => {
    const receiver = await c.node(['/ip4/127.0.0.1/tcp/0'])
    let received = 0
    const done = new Promise<void>((resolve, reject) => {
      void receiver.handle(PROTOCOL, (stream: Stream) => {
        void (async () => {
          let paused = false
          for await (const chunk of stream) {
            received += chunk.byteLength
            if (!paused && received >= MiB) {
              paused = true
              stream.pause()
              await new Promise(resolve => setTimeout(resolve, 300))
              stream.resume()
            }
          }
        })().then(resolve, reject)
      })
    })
    await send(receiver, SIZE, 64 * 1024, false)
    await done
    assert.equal(received, SIZE)
  })
})
