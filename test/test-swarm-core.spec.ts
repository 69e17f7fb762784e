import { strict as assert } from 'node:assert'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decodeRange } from '../src/core/bao/index.js'
import { Bitfield, MAX_PIECE, MIN_PIECE, pieceCount, pieceRange, pieceSize } from '../src/core/swarm/pieces.js'
import { PartialValue } from '../src/core/swarm/partial.js'
import { KIND, RESPONSE } from '../src/protocol/constants.js'
import { GET_SOURCES, MessageReader, decodeGet, decodeGetAnswer, encodeGet, withHeader } from '../src/protocol/messages.js'
import {
  announceBody, badPeerBody, decodeAnnounce, decodeBadPeer, decodeHaveResponse, decodeSourceList, decodeSourcesResponse,
  decodeVouch, decodeVouchResponse, encodeGetSources, encodeHaveResponse, encodeSourcesResponse, encodeVouchResponse, vouchBody
} from '../src/protocol/swarm-messages.js'
import { encode } from '../src/core/bao/index.js'
import { pseudoRandom } from './helpers.js'

const MiB = 1024 * 1024
const read = (m: Uint8Array): MessageReader => new MessageReader(m)
const req = (kind: number, body: Uint8Array): MessageReader => read(withHeader(kind, 7, body))

function refuses (fn: () => unknown): void {
  assert.throws(fn, (err: Error) => { assert.equal(err.name, 'ProtocolError'); return true })
}

describe('swarm core', () => {
  describe('pieces', () => {
    it('cuts values into about 64 power-of-two pieces of 256 KiB to 4 MiB', () => {
      assert.equal(pieceSize(0), MIN_PIECE)
      assert.equal(pieceSize(4 * MiB), MIN_PIECE) // 16 pieces: never below 256 KiB
      assert.equal(pieceSize(32 * MiB), 512 * 1024)
      assert.equal(pieceCount(32 * MiB), 64)
      assert.equal(pieceSize(1024 * MiB), MAX_PIECE)
      assert.equal(pieceCount(1024 * MiB), 256)
      assert.equal(pieceCount(0), 1)
      assert.equal(pieceCount(32 * MiB + 5), 33) // 1 MiB pieces above 32 MiB
      assert.deepEqual(pieceRange(32 * MiB + 5, 32), { offset: 32 * MiB, length: 5 })
      assert.throws(() => pieceRange(10, 1), { name: 'OutOfRangeError' })
    })

    it('bitfields count, round-trip and refuse stray bits', () => {
      const b = new Bitfield(10)
      b.set(0); b.set(9); b.set(9)
      assert.equal(b.count(), 2)
      const c = Bitfield.fromBytes(b.toBytes(), 10)
      assert.ok(c.get(0) && c.get(9) && !c.get(5))
      c.clear(0)
      assert.equal(c.count(), 1)
      assert.throws(() => Bitfield.fromBytes(new Uint8Array([0, 0x04]), 10), { name: 'OutOfRangeError' }) // bit 10
      assert.throws(() => Bitfield.fromBytes(new Uint8Array(3), 10), { name: 'OutOfRangeError' })
    })
  })

  describe('PartialValue', () => {
    it('holds a piece only once all its bytes verified, in order, and proves held ranges', async () => {
      const size = 4 * MiB + 1000
      const value = pseudoRandom(size, 3)
      const full = encode(value)
      const root = full.root
      const pv = new PartialValue(size)
      assert.equal(pv.pieces, 17)
      // Piece 2 arrives as a verified range stream from "a source".
      const r2 = pieceRange(size, 2)
      const { encodeRangeSync } = await import('../src/core/bao/index.js')
      const stream = encodeRangeSync(value, full.outboard, r2)
      let at = r2.offset
      for await (const part of decodeRange([stream], root, r2, 4, { target: pv.data, onParent: (i, n) => { pv.onParent(i, n) } })) {
        pv.verified(at, part.length)
        at += part.length
      }
      assert.ok(pv.have.get(2))
      assert.ok(!pv.have.get(1))
      assert.equal(pv.prefix(), 0)
      assert.ok(pv.holds({ offset: r2.offset + 10, length: 100 }))
      assert.ok(!pv.holds({ offset: r2.offset - 1, length: 2 }))
      // What it proves verifies against the root, and is the value's bytes.
      const out: Uint8Array[] = []
      for await (const part of decodeRange([pv.encode({ offset: r2.offset + 10, length: 100 })], root, { offset: r2.offset + 10, length: 100 })) out.push(part)
      assert.deepEqual(Buffer.concat(out), Buffer.from(value.subarray(r2.offset + 10, r2.offset + 110)))
      assert.throws(() => pv.encode({ offset: 0, length: 1 }), { name: 'NotFoundError' })
      // Out-of-order bytes within a piece are not counted; a refetch is harmless.
      pv.verified(10, 5)
      assert.ok(!pv.have.get(0))
      pv.fill(0, value.subarray(0, pv.pieceSize))
      assert.ok(pv.have.get(0))
      assert.equal(pv.prefix(), pv.pieceSize)
      pv.fill(1, value.subarray(pv.pieceSize, 2 * pv.pieceSize))
      assert.equal(pv.prefix(), 3 * pv.pieceSize)
      const changed = pv.changed()
      pv.close()
      await changed
      assert.ok(!pv.holds({ offset: r2.offset, length: 1 }))
      assert.ok(pv.closed)
    })
  })

  describe('messages', () => {
    it('GET carries the swarm flag and its sources answer round-trips', async () => {
      const digest = pseudoRandom(32, 1)
      const r = read(encodeGet(3, { digest, offset: 0, length: 2 ** 64 - 1, inline: true, partial: true, swarm: true }))
      assert.equal(decodeGet(r).swarm, true)
      const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const sources = [{ peerId: peer, complete: true, addrs: [multiaddr('/ip4/198.18.0.2/tcp/4002')] }]
      const answer = decodeGetAnswer(read(encodeGetSources(3, 32 * MiB, sources)))
      assert.equal(answer.mode, GET_SOURCES)
      if (answer.mode !== GET_SOURCES) return
      const list = decodeSourceList(answer.sources)
      assert.equal(list[0].peerId, peer)
      assert.equal(list[0].addrs[0].toString(), '/ip4/198.18.0.2/tcp/4002')
      assert.deepEqual(decodeSourcesResponse(read(encodeSourcesResponse(4, 5, sources)))?.sources[0].peerId, peer)
      assert.equal(decodeSourcesResponse(read(encodeSourcesResponse(4, undefined, sources))), undefined)
    })

    it('ANNOUNCE, VOUCH and BADPEER round-trip; malformed ones are protocol errors', async () => {
      const digest = pseudoRandom(32, 2)
      const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const a = decodeAnnounce(req(KIND.ANNOUNCE, announceBody({ addrs: [multiaddr('/ip4/127.0.0.1/tcp/1')], entries: [{ digest, state: 2 }] })))
      assert.equal(a.addrs?.length, 1)
      assert.deepEqual(a.entries[0].state, 2)
      assert.equal(decodeVouch(req(KIND.VOUCH, vouchBody(peer))), peer)
      assert.equal(decodeVouchResponse(read(encodeVouchResponse(1, true))), true)
      assert.equal(decodeBadPeer(req(KIND.BADPEER, badPeerBody(digest, peer))).peerId, peer)
      refuses(() => decodeVouch(req(KIND.VOUCH, new Uint8Array([3, 0x61, 0x62, 0x63]))))
      refuses(() => decodeAnnounce(req(KIND.ANNOUNCE, new Uint8Array([1, 0, 3, 0xff, 0xff, 0xff, 0, 0]))))
      const bad = announceBody({ entries: [{ digest, state: 2 }] })
      bad[bad.length - 1] = 9
      refuses(() => decodeAnnounce(req(KIND.ANNOUNCE, bad)))
    })

    it('HAVE answers none, complete, or partial bitfields checked against the size', () => {
      assert.equal(decodeHaveResponse(read(encodeHaveResponse(1, undefined))), undefined)
      const c = decodeHaveResponse(read(encodeHaveResponse(1, { size: 32 * MiB })))
      assert.equal(c?.state, 'complete')
      assert.ok(c?.have.full())
      const pv = new PartialValue(32 * MiB)
      pv.fill(3, new Uint8Array(pv.pieceSize))
      pv.fetching.set(5)
      const p = decodeHaveResponse(read(encodeHaveResponse(1, { size: pv.size, have: pv.have, fetching: pv.fetching })))
      assert.equal(p?.state, 'partial')
      assert.ok(p?.have.get(3) && !p.have.get(4) && p.fetching.get(5))
      const m = encodeHaveResponse(1, { size: pv.size, have: pv.have, fetching: pv.fetching })
      refuses(() => decodeHaveResponse(read(m.subarray(0, m.length - 1))))
      assert.equal(KIND.HAVE | RESPONSE, m[0])
    })
  })
})
