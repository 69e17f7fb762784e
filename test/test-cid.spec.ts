import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { base58btc } from 'multiformats/bases/base58'
import { base32 } from 'multiformats/bases/base32'
import { bases } from 'multiformats/basics'
import {
  cidOfBytes, cidOfStream, cidOfFile, parseCID, formatCID, equalsCID, compareCID, digestOf, cidFromDigest, isValidCID
} from '../src/core/cid.js'
import { hex, pseudoRandom, tempDir } from './helpers.js'

/** b3sum from Debian: an independent implementation (`.ci/run` installs it). */
function b3sum (path: string): string {
  const out = execFileSync('b3sum', ['--no-names', path], { encoding: 'utf8' })
  return out.trim()
}

describe('cid', () => {
  describe('cidOfBytes', () => {
    it('makes a CIDv1, raw codec, blake3 multihash, printed in base32 as bafk…', () => {
      const cid = cidOfBytes(new TextEncoder().encode('hello'))
      assert.equal(cid.version, 1)
      assert.equal(cid.code, 0x55)
      assert.equal(cid.multihash.code, 0x1e)
      assert.equal(cid.multihash.digest.length, 32)
      assert.match(cid.toString(), /^bafk[a-z2-7]+$/)
    })

    it('gives the same key for the same bytes every time', () => {
      const a = cidOfBytes(pseudoRandom(100_000, 5))
      const b = cidOfBytes(pseudoRandom(100_000, 5))
      assert.ok(a.equals(b))
      assert.ok(!a.equals(cidOfBytes(pseudoRandom(100_000, 6))))
    })

    it('hashes the empty value to BLAKE3 of nothing', () => {
      assert.equal(hex(digestOf(cidOfBytes(new Uint8Array(0)))), 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262')
    })
  })

  describe('cidOfStream', () => {
    it('equals cidOfBytes however the stream is cut', async () => {
      const data = pseudoRandom(300_000, 9)
      for (const step of [1000, 16384, 65536, 300_000]) {
        async function * pieces (): AsyncGenerator<Uint8Array> {
          for (let o = 0; o < data.length; o += step) yield data.slice(o, o + step)
        }
        assert.ok((await cidOfStream(pieces())).equals(cidOfBytes(data)), `step ${step}`)
      }
    })
  })

  describe('cidOfFile', () => {
    it('has the digest that b3sum prints for the same file', async () => {
      const dir = await tempDir()
      try {
        for (const size of [0, 1, 1024, 1025, 16385, 3 * (1 << 20) + 17]) {
          const path = join(dir.path, `f${size}`)
          await writeFile(path, pseudoRandom(size, size + 11))
          assert.equal(hex(digestOf(await cidOfFile(path))), b3sum(path), `size ${size}`)
        }
      } finally { await dir.cleanup() }
    })

    it('rejects a missing file with the filesystem error', async () => {
      await assert.rejects(cidOfFile('/nonexistent/dstore/file'), { code: 'ENOENT' })
    })
  })

  describe('parseCID', () => {
    const good = cidOfBytes(new Uint8Array([1, 2, 3]))

    it('prints every spelling of a key canonically, however often and in whatever order they are parsed', () => {
      const text = good.toString()
      const upper = 'b' + text.slice(1).toUpperCase()
      // Each spelling twice (the second from the parse cache), in both orders.
      for (const spelling of [text, upper, upper, text, ` ${text}\n`, ` ${text}\n`]) {
        const cid = parseCID(spelling)
        assert.equal(cid.toString(), text, JSON.stringify(spelling))
        assert.ok(cid.equals(good))
      }
      // A bad string is refused every time (errors are never cached as keys).
      for (let i = 0; i < 2; i++) assert.throws(() => parseCID(text.slice(0, -1)), { name: 'InvalidCIDError' })
    })

    it('accepts the base32 string and the CID object', () => {
      assert.ok(parseCID(good.toString()).equals(good))
      assert.ok(parseCID(good).equals(good))
      assert.ok(parseCID(`  ${good.toString()}\n`).equals(good))
    })

    it('accepts other multibase encodings of the same key', () => {
      assert.ok(parseCID(good.toString(base58btc)).equals(good))
    })

    it('accepts every multibase multiformats knows (upper-case base32 too) and prints base32', () => {
      for (const base of Object.values(bases)) {
        const cid = parseCID(good.toString(base))
        assert.ok(cid.equals(good), base.name)
        assert.equal(cid.toString(), good.toString(base32), `${base.name} prints as base32`)
      }
      assert.throws(() => parseCID('x' + good.toString().slice(1)), { name: 'InvalidCIDError' }, 'an unknown prefix')
    })

    const bad: Array<[string, () => unknown]> = [
      ['an empty string', () => ''],
      ['garbage', () => 'not-a-cid'],
      ['a truncated string', () => good.toString().slice(0, 20)],
      ['a string with a bad base32 character', () => good.toString().slice(0, -3) + '1!8'],
      ['a CIDv0', () => CID.createV0(Digest.create(0x12, new Uint8Array(32))).toString()],
      ['a CIDv1 with the dag-pb codec', () => CID.createV1(0x70, good.multihash).toString()],
      ['a CIDv1 with a sha2-256 multihash', () => CID.createV1(0x55, Digest.create(sha256.code, new Uint8Array(32))).toString()],
      ['a blake3 digest of the wrong length', () => CID.createV1(0x55, Digest.create(0x1e, new Uint8Array(16))).toString()],
      ['a number', () => 42],
      ['null', () => null]
    ]
    for (const [what, make] of bad) {
      it(`rejects ${what} with InvalidCIDError`, () => {
        assert.throws(() => parseCID(make()), { name: 'InvalidCIDError', code: 'ERR_INVALID_CID' })
        assert.equal(isValidCID(make()), false)
      })
    }
  })

  describe('formatCID, equalsCID, compareCID', () => {
    const a = cidOfBytes(new Uint8Array([1]))
    const b = cidOfBytes(new Uint8Array([2]))

    it('formats in base32', () => {
      assert.equal(formatCID(a.toString(base58btc)), a.toString(base32))
    })

    it('compares keys by value, not by spelling', () => {
      assert.ok(equalsCID(a, a.toString(base58btc)))
      assert.ok(!equalsCID(a, b))
      assert.equal(compareCID(a, a.toString()), 0)
      assert.equal(Math.sign(compareCID(a, b)), -Math.sign(compareCID(b, a)))
      assert.notEqual(compareCID(a, b), 0)
    })

    it('wraps a raw digest, rejecting the wrong length', () => {
      assert.ok(cidFromDigest(digestOf(a)).equals(a))
      assert.throws(() => cidFromDigest(new Uint8Array(31)), { name: 'InvalidCIDError' })
    })
  })
})
