import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { streamPair } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { createMemoryStore, type MemoryBlobStore } from '../src/core/store/memory.js'
import { KIND } from '../src/protocol/constants.js'
import { createProviderHandler, handleBlobStream, type ProviderOptions } from '../src/protocol/provider.js'
import { getRange, type RequesterContext } from '../src/protocol/requester.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { decodeGet, encodeBlobGetResponse, type MessageReader } from '../src/protocol/messages.js'
import { BlobStream } from '../src/protocol/blob-stream.js'
import { cidFromDigest } from '../src/core/cid.js'
import { encodeRange } from '../src/core/bao/index.js'
import { DEFAULT_GROUP_LOG } from '../src/core/tree.js'
import { collect, pseudoRandom } from './helpers.js'

const MiB = 1024 * 1024

/**
 * A provider and a requester over in-memory stream pairs: one rpc channel, and a fresh pair for
 * each blob stream the requester opens (`cut` resets the provider's end after that many ms).
 */
async function harness (options: { cut?: number } = {}): Promise<{ ctx: RequesterContext, store: MemoryBlobStore, kinds: number[], blobStreams: () => number, close: () => Promise<void> }> {
  const store = createMemoryStore({ maxBytes: 256 * MiB })
  const provider: ProviderOptions = { store, onDelete: async () => {} }
  const kinds: number[] = []
  const handler = createProviderHandler(provider)
  const [a, b] = await streamPair()
  const server = new RpcChannel(b, async (msg: MessageReader) => { kinds.push(msg.kind); return await handler(msg) })
  const channel = new RpcChannel(a, async () => { throw new Error('unexpected') })
  let opened = 0
  const connection = {
    status: 'open',
    newStream: async (): Promise<Stream> => {
      opened++
      const [local, remote] = await streamPair()
      void handleBlobStream(remote, provider)
      if (options.cut !== undefined) setTimeout(() => { remote.abort(new Error('test: connection cut')) }, options.cut)
      return local
    }
  } as unknown as Connection
  return {
    ctx: { channel, connection },
    store,
    kinds,
    blobStreams: () => opened,
    close: async () => { channel.abort(new Error('done')); server.abort(new Error('done')); await store.close() }
  }
}

describe('protocol get (requester and provider, in memory)', () => {
  it('answers a small value with one rpc GET and no blob stream', async () => {
    const h = await harness()
    const value = pseudoRandom(100, 1)
    const cid = await h.store.put(value)
    assert.deepEqual(await collect(getRange(h.ctx, cid.multihash.digest, { offset: 0 })), value)
    assert.deepEqual(h.kinds, [KIND.GET])
    assert.equal(h.blobStreams(), 0)
    await h.close()
  })

  it('gets a large value with one rpc GET (its size and start inline) and one blob stream for the rest', async () => {
    const h = await harness()
    const value = pseudoRandom(3 * MiB + 123, 2)
    const cid = await h.store.put(value)
    const totals: Array<number | undefined> = []
    const got = await collect(getRange(h.ctx, cid.multihash.digest, { offset: 0 }, { onProgress: (e) => totals.push(e.total) }))
    assert.deepEqual(got, value)
    assert.deepEqual(h.kinds, [KIND.GET], 'one rpc request')
    assert.equal(h.blobStreams(), 1)
    assert.equal(totals[0], value.length, 'the size is known from the first answer')
    await h.close()
  })

  it('gets a range that starts inside a group and ends before the end, in two verified parts', async () => {
    const h = await harness()
    const value = pseudoRandom(2 * MiB, 3)
    const cid = await h.store.put(value)
    const got = await collect(getRange(h.ctx, cid.multihash.digest, { offset: 5000, length: MiB }))
    assert.deepEqual(got, value.subarray(5000, 5000 + MiB))
    await h.close()
  })

  it('a blob stream reset under the transfer is a GlobalUnreachableError carrying the reason, not a VerificationError', async () => {
    const h = await harness({ cut: 30 })
    const value = pseudoRandom(24 * MiB, 4)
    const cid = await h.store.put(value)
    await assert.rejects(collect(getRange(h.ctx, cid.multihash.digest, { offset: 0 })), (err: Error) => {
      assert.equal(err.name, 'GlobalUnreachableError')
      assert.match(err.message, /cut off/)
      return true
    })
    await h.close()
  })
})

describe('protocol get against a Global that ignores credit (in memory)', () => {
  it('a blob stream sent past its credit while the inline start is still being consumed is reset, not buffered', async () => {
    const store = createMemoryStore({ maxBytes: 256 * MiB })
    const provider: ProviderOptions = { store, onDelete: async () => {} }
    const handler = createProviderHandler(provider)
    const [a, b] = await streamPair()
    const server = new RpcChannel(b, handler)
    const channel = new RpcChannel(a, async () => { throw new Error('unexpected') })
    let blasted!: () => void
    const sent = new Promise<void>(resolve => { blasted = resolve })
    // The rest of the value, genuine bytes, all sent at once: no wait for CREDIT.
    const hostile = async (remote: Stream): Promise<void> => {
      const blob = new BlobStream(remote)
      const req = decodeGet(await blob.readMessage('head'))
      const cid = cidFromDigest(req.digest)
      const reader = await store.open(cid)
      await blob.send(encodeBlobGetResponse(reader.size))
      const range = { offset: req.offset, length: reader.size - req.offset }
      for await (const part of encodeRange(reader, await store.outboard(cid), range, DEFAULT_GROUP_LOG)) remote.send(part)
      await reader.close()
      blasted()
    }
    let local: Stream | undefined
    const connection = {
      status: 'open',
      newStream: async (): Promise<Stream> => {
        const [l, remote] = await streamPair()
        local = l
        void hostile(remote).catch(() => { blasted() })
        return l
      }
    } as unknown as Connection
    const value = pseudoRandom(40 * MiB, 7)
    const cid = await store.put(value)
    const parts = getRange({ channel, connection }, cid.multihash.digest, { offset: 0 })[Symbol.asyncIterator]()
    try {
      // The consumer holds the first verified piece of the start and asks for nothing more.
      assert.equal((await parts.next()).done, false)
      await sent
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(local?.status, 'aborted', 'our end reset the stream as the sender went past its credit')
      await assert.rejects(async () => { for (;;) if ((await parts.next()).done === true) break }, /past its credit/)
    } finally {
      await parts.return?.(undefined)
      channel.abort(new Error('done')); server.abort(new Error('done')); await store.close()
    }
  })
})
