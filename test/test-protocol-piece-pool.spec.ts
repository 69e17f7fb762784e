/**
 * The provider's reuse of a GET's output pieces (src/protocol/piece-pool.ts): a piece is
 * overwritten only once the receiver's CREDIT proves it consumed the piece's bytes. Over real
 * libp2p (TLS, yamux) between a Global and a Local in this process, large gets reuse pieces
 * and every byte still arrives right, verified by the Local's decoder and compared here.
 */
import { strict as assert } from 'node:assert'
import { BLOB_WINDOW } from '../src/protocol/constants.js'
import { PiecePool, reusedPieces } from '../src/protocol/piece-pool.js'
import { pseudoRandom } from './helpers.js'
import { Cleanup, MiB, assertBytes } from './net.js'

describe('protocol: GET output pieces reused on the receiver\'s credit', () => {
  it('frees a piece only once a grant proves its last byte consumed, and ignores pieces it did not lend', () => {
    const pool = new PiecePool(1000)
    const a = pool.allocate(1000)
    const b = pool.allocate(600)
    const foreign = new Uint8Array(1000)
    pool.sending(a, 1000)
    pool.sending(foreign, 2000)
    pool.sending(b, 2600)
    // A grant of total T proves T - BLOB_WINDOW consumed.
    pool.granted(BLOB_WINDOW + 999)
    const c = pool.allocate(1000)
    assert.notEqual(c.buffer, a.buffer, 'a is not yet consumed')
    pool.granted(BLOB_WINDOW + 1000)
    const d = pool.allocate(1000)
    assert.equal(d.buffer, a.buffer, 'a is free once its last byte is consumed')
    pool.granted(BLOB_WINDOW + 2599)
    assert.notEqual(pool.allocate(1000).buffer, b.buffer, 'b is not yet consumed')
    pool.granted(BLOB_WINDOW + 2600)
    const e = pool.allocate(10)
    assert.equal(e.buffer, b.buffer, 'b is free, and lent again whatever the length')
    assert.equal(e.length, 10)
    assert.notEqual(pool.allocate(1000).buffer, foreign.buffer, 'a foreign piece is never lent')
    assert.equal(pool.allocate(5000).length, 5000, 'a piece larger than the pool gets its own buffer')
  })

  it('serves large gets over TLS with reused pieces, every byte right (get, cat, two at once)', async function () {
    this.timeout(120_000)
    const c = new Cleanup()
    try {
      const global = await c.global(await c.dir('dstore-pool-g-'))
      const local = await c.local(global, { cacheSize: 0 })
      const cacheLocal = await c.local(global, { cacheSize: 256 * MiB })
      const values = [pseudoRandom(48 * MiB + 777, 11), pseudoRandom(40 * MiB, 12)]
      const cids = await Promise.all(values.map(async v => await global.put(v)))
      const before = reusedPieces()
      // A cached get: decoded (and verified) into one buffer.
      assertBytes(await cacheLocal.get(cids[0]), values[0], 'get')
      const afterGet = reusedPieces()
      // 48 MiB in 1 MiB pieces, at most about a window and a half (12 MiB) outstanding.
      assert.ok(afterGet - before >= 30, `pieces reused during the get: ${afterGet - before}`)
      // Streamed, and two values at once on one connection: each GET has its own pool.
      const cat = async (i: number): Promise<void> => {
        const parts: Uint8Array[] = []
        for await (const p of local.cat(cids[i])) parts.push(p.slice())
        assertBytes(Buffer.concat(parts), values[i], `cat ${i}`)
      }
      await Promise.all([cat(0), cat(1)])
      assert.ok(reusedPieces() - afterGet >= 50, `pieces reused during the two cats: ${reusedPieces() - afterGet}`)
    } finally {
      await c.run()
    }
  })
})
