/**
 * The native addon's memory entry points (native/dstore_memory.c): they check their arguments
 * and throw instead of reading out of bounds, and tell what the fs store's direct I/O needs.
 * (Its BLAKE3 entry points are tested in test-blake3.)
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { open, readFile, writeFile } from 'node:fs/promises'
import { release } from 'node:os'
import { join } from 'node:path'
import { loadNativeAddon } from '../src/core/native.js'
import { prefault } from '../src/core/prefault.js'
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

  /**
   * `size` bytes of memory no one has touched: a WebAssembly memory is a fresh mapping from the
   * kernel (an ArrayBuffer may reuse memory the process freed, which calloc zeroed and so backed).
   */
  const untouched = (size: number): Uint8Array => {
    // (The project's TypeScript lib settings carry no WebAssembly declarations.)
    const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly
    return new Uint8Array(new Memory({ initial: size / 65536 }).buffer)
  }
  /** This process's resident memory, in bytes (/proc/self/statm's second field is in pages). */
  const resident = (): number => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * pageSize()
  const pageSize = (): number => {
    const a = addon as NonNullable<typeof addon>
    // The whole pages inside a view of 3 pages' worth starting mid-page: 2 at 4 KiB pages.
    for (const size of [4096, 16384, 65536]) {
      const v = new Uint8Array(new ArrayBuffer(size * 4)).subarray(1, 1 + size * 3)
      if (a.prefault(v) === 2 * size) return size
    }
    throw new Error('no page size fits')
  }

  it('prefault: backs the whole pages inside a fresh buffer, bytes unchanged; bad arguments throw', () => {
    const [major, minor] = release().split('.').map(Number)
    const a = addon as NonNullable<typeof addon>
    // MADV_POPULATE_WRITE is Linux 5.14: older kernels answer -1, and so does every other system.
    assert.ok(major > 5 || (major === 5 && minor >= 14), `this test needs Linux 5.14 or later, not ${release()}`)
    const page = pageSize()
    const size = 64 << 20
    const fresh = untouched(size)
    const before = resident()
    const done = a.prefault(fresh)
    const grew = resident() - before
    // All its whole pages (the buffer need not start on a page), and now resident without a write.
    assert.ok(done >= size - page && done <= size && done % page === 0, `prefault backed ${done} of ${size} bytes`)
    // (Other memory of the process may be freed meanwhile, a collection say: a margin of 1/4.)
    assert.ok(grew >= size * 3 / 4, `resident memory grew by ${grew} bytes, not about ${size}`)
    assert.ok(fresh.every(b => b === 0))
    // Memory already written keeps its bytes.
    const filled = new Uint8Array(1 << 20).map((_, i) => (i * 7 + 3) & 0xff)
    assert.ok(a.prefault(filled) > 0)
    assert.ok(filled.every((b, i) => b === ((i * 7 + 3) & 0xff)))
    // No whole page inside: nothing asked, 0.
    assert.equal(a.prefault(new Uint8Array(new ArrayBuffer(page * 2)).subarray(page - 8, page + 8)), 0)
    assert.equal(a.prefault(new Uint8Array(0)), 0)
    assert.throws(() => a.prefault(new Uint16Array(4096) as unknown as Uint8Array), TypeError)
    assert.throws(() => (a.prefault as () => number)(), TypeError)
  })

  it('prefault (core/prefault.ts): a large view is backed through the addon, a small one left alone', () => {
    const large = untouched(64 << 20)
    const before = resident()
    prefault(large)
    assert.ok(resident() - before >= (48 << 20), 'a 64 MiB view was not backed')
    // Under its 64 KiB floor no system call is made (a page-sized view of fresh memory stays unbacked).
    const small = untouched(2 << 20).subarray(1 << 20, (1 << 20) + 60 * 1024)
    const before2 = resident()
    prefault(small)
    assert.ok(resident() - before2 < 32 * 1024, 'a view under 64 KiB was backed')
    assert.ok(large.every(b => b === 0))
  })
})
