import { strict as assert } from 'node:assert'
import * as dstore from '../src/index.js'

describe('dstore (public entry point)', () => {
  it('runs the example at the top of src/index.ts', async () => {
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
