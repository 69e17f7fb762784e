import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import * as dstore from '../src/index.js'
import { tempDir } from './helpers.js'

describe('dstore (public entry point)', () => {
  it('runs the example at the top of src/index.ts', async () => {
    const dir = await tempDir()
    const global = await dstore.createGlobal({ repo: join(dir.path, 'global-repo') })
    const local = await dstore.createLocal({ global: global.multiaddrs })
    try {
      const cid = await local.put(new TextEncoder().encode('hello dstore'))
      const bytes = await local.get(cid)
      assert.equal(new TextDecoder().decode(bytes), 'hello dstore')
      assert.ok(cid.equals(dstore.cidOfBytes(new TextEncoder().encode('hello dstore'))))
      const pieces: Uint8Array[] = []
      for await (const piece of local.cat(cid, { offset: 6, length: 6 })) pieces.push(piece)
      assert.equal(new TextDecoder().decode(Buffer.concat(pieces)), 'dstore')
      assert.equal(await local.delete(cid), true)
      await assert.rejects(local.get(cid), { name: 'NotFoundError' })
    } finally {
      await local.stop()
      await global.stop()
      await dir.cleanup()
    }
  })

  it('keeps the core usable on its own: a memory store gives the same CID as cidOfBytes', async () => {
    const cache = dstore.createMemoryStore({ maxBytes: 64 << 20 })
    const cid = await cache.put(new TextEncoder().encode('hello'))
    assert.ok(cid.equals(dstore.cidOfBytes(new TextEncoder().encode('hello'))))
    assert.match(cid.toString(), /^bafk/)
    await cache.close()
  })

  it('installs Promise.withResolvers, which libp2p 3 needs on Node 20', () => {
    const { promise, resolve } = (Promise as any).withResolvers()
    resolve(7)
    return promise.then((v: number) => { assert.equal(v, 7) })
  })

  it('exposes the typed errors with stable names and codes', () => {
    const err = new dstore.NotFoundError('missing')
    assert.equal(err.name, 'NotFoundError')
    assert.equal(err.code, 'ERR_NOT_FOUND')
    assert.ok(err instanceof dstore.DstoreError)
  })
})
