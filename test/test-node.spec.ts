/**
 * The libp2p node both roles use (src/peers/node.ts): settings that keep a saturated link's
 * connections alive. libp2p's connection monitor pings every 10 s and here waits up to a minute
 * for an answer (a ping queues behind whatever a busy connection carries), so pings overlap: a
 * node must accept and open several ping streams at once, or the second ping fails at once and
 * the monitor aborts the connection (bench/swarm.ts saw transfers cut so).
 */
import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { createNode, type DstoreNode } from '../src/peers/node.js'

describe('libp2p node', function () {
  let a: DstoreNode
  let b: DstoreNode
  before(async function () {
    a = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'] })
    b = await createNode({ listen: [] })
  })
  after(async function () {
    await b?.stop()
    await a?.stop()
  })

  it('runs overlapping pings on one connection, each way', async function () {
    const connection = await b.dial(a.getMultiaddrs()[0])
    const rtts = await Promise.all(Array.from({ length: 4 }, async () => await b.services.ping.ping(a.peerId)))
    assert.equal(rtts.length, 4)
    const back = await Promise.all(Array.from({ length: 4 }, async () => await a.services.ping.ping(b.peerId)))
    assert.equal(back.length, 4)
    assert.equal(connection.status, 'open')
  })
})
