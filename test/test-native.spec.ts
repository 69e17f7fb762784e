/**
 * The native addon's memory entry points (native/dstore_memory.c): they check their arguments
 * and throw instead of reading out of bounds, and tell what the fs store's direct I/O needs.
 * (Its BLAKE3 entry points are tested in test-blake3.)
 */
import { strict as assert } from 'node:assert'
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadNativeAddon } from '../src/core/native.js'
import { tempDir } from './helpers.js'

describe('native addon: memory', () => {
  const addon = loadNativeAddon()
  it('is built here (npm install builds it)', () => {
    assert.ok(addon !== undefined)
  })

  it('misalignment: the address modulo a power of two; bad arguments throw', () => {
    const a = addon as NonNullable<typeof addon>
    const sab = new SharedArrayBuffer(8192)
    const base = a.misalignment(new Uint8Array(sab), 4096)
    assert.ok(base >= 0 && base < 4096)
    assert.equal(a.misalignment(new Uint8Array(sab, 1), 4096), (base + 1) % 4096)
    assert.equal(a.misalignment(new Uint8Array(sab, 5), 1), 0)
    assert.throws(() => a.misalignment(new Uint16Array(4) as unknown as Uint8Array, 4096), TypeError)
    assert.throws(() => a.misalignment('x' as unknown as Uint8Array, 4096), TypeError)
    for (const bad of [0, 3, -4096, 4096.5, 2 ** 21]) assert.throws(() => a.misalignment(new Uint8Array(sab), bad), RangeError, String(bad))
  })

  it('residentBytes: what the page cache holds of a file, within bounds; bad arguments throw', async () => {
    const a = addon as NonNullable<typeof addon>
    const dir = await tempDir('dstore-native-')
    try {
      const path = join(dir.path, 'f')
      await writeFile(path, new Uint8Array(1 << 20).fill(7))
      await readFile(path)
      const h = await open(path, 'r')
      try {
        // Just written and read through the page cache: (nearly) all of it is there, in whole
        // pages of this system's size (4 KiB here; 16 or 64 KiB on some arm64 kernels).
        const page = a.residentBytes(h.fd, 0, 1)
        assert.ok(page >= 4096 && (page & (page - 1)) === 0, `page ${page}`)
        const all = a.residentBytes(h.fd, 0, 1 << 20)
        assert.ok(all >= 1 << 19 && all <= 1 << 20 && all % page === 0, `resident ${all}`)
        assert.equal(a.residentBytes(h.fd, 5, 10), page)
        assert.equal(a.residentBytes(h.fd, 0, 0), 0)
        for (const bad of [-1, 1.5, 2 ** 31]) assert.throws(() => a.residentBytes(bad, 0, 4096), RangeError, `fd ${bad}`)
        assert.throws(() => a.residentBytes(h.fd, 0, 2 ** 30 + 1), RangeError)
        assert.throws(() => a.residentBytes(h.fd, -1, 4096), RangeError)
        assert.throws(() => (a.residentBytes as (...args: number[]) => number)(h.fd, 0), TypeError)
      } finally {
        await h.close()
      }
      // A descriptor that is not open (no process has one this high): an Error, not a crash.
      assert.throws(() => a.residentBytes(2 ** 31 - 2, 0, 4096), /fstat failed/)
    } finally {
      await dir.cleanup()
    }
  })
})
