/**
 * The native addon's memory entry points (native/dstore_memory.c): they check their arguments
 * and throw instead of reading out of bounds, and tell what the fs store's direct I/O needs.
 * (Its BLAKE3 entry points are tested in test-blake3.)
 */
import { strict as assert } from 'node:assert'
import { existsSync, readFileSync } from 'node:fs'
import { open, readFile, writeFile } from 'node:fs/promises'
import { release } from 'node:os'
import { join } from 'node:path'
import { loadNativeAddon } from '../src/core/native.js'
import { freshBytes, prefault } from '../src/core/prefault.js'
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
  /** This process's minor page faults (all threads) while `fn` runs: others can only add to them. */
  const faultsDuring = (fn: () => void): number => {
    const before = process.resourceUsage().minorPageFault
    fn()
    return process.resourceUsage().minorPageFault - before
  }
  /** Faults that filling `size` bytes of untouched memory takes: one per page, or per 2 MiB where transparent huge pages are always on. */
  const faultsToFill = (size: number, page: number): number => {
    const thp = existsSync('/sys/kernel/mm/transparent_hugepage/enabled') ? readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8') : ''
    return size / (thp.includes('[always]') ? 2 << 20 : page)
  }
  let page = 0
  before(async () => {
    // The page size: what the page cache holds of a file's first byte, just written.
    const dir = await tempDir()
    try {
      await writeFile(join(dir.path, 'p'), 'x')
      const h = await open(join(dir.path, 'p'), 'r')
      try { page = (addon as NonNullable<typeof addon>).residentBytes(h.fd, 0, 1) } finally { await h.close() }
    } finally {
      await dir.cleanup()
    }
    assert.ok(page >= 4096 && (page & (page - 1)) === 0, `page size ${page}`)
  })

  it('prefault: backs the whole pages inside a view, so that filling it takes no page faults; bytes unchanged; bad arguments throw', () => {
    const [major, minor] = release().split('.').map(Number)
    // MADV_POPULATE_WRITE is Linux 5.14: older kernels answer -1, and so does every other system.
    assert.ok(major > 5 || (major === 5 && minor >= 14), `this test needs Linux 5.14 or later, not ${release()}`)
    const a = addon as NonNullable<typeof addon>
    assert.equal(typeof a.prefault, 'function')
    const pf = a.prefault as (view: Uint8Array) => number
    const size = 64 << 20
    // Untouched memory faults when filled (which shows the count works)...
    const control = untouched(size)
    const expected = faultsToFill(size, page)
    const unbacked = faultsDuring(() => { control.fill(1) })
    assert.ok(unbacked >= expected / 2, `filling untouched memory took ${unbacked} faults, expected about ${expected}`)
    // ...and does not once prefault has backed it: all of it (a WebAssembly memory is page-aligned).
    const fresh = untouched(size)
    assert.equal(pf(fresh), size)
    const backed = faultsDuring(() => { fresh.fill(1) })
    assert.ok(backed < expected / 8, `filling prefaulted memory took ${backed} faults (untouched: ${unbacked})`)
    // Memory already written keeps its bytes.
    const filled = new Uint8Array(1 << 20).map((_, i) => (i * 7 + 3) & 0xff)
    assert.ok(pf(filled) > 0)
    assert.ok(filled.every((b, i) => b === ((i * 7 + 3) & 0xff)))
    // Only pages wholly inside the view: none inside, nothing asked, 0.
    assert.equal(pf(untouched(1 << 20).subarray(page - 8, page + 8)), 0)
    assert.equal(pf(new Uint8Array(0)), 0)
    assert.throws(() => pf(new Uint16Array(4096) as unknown as Uint8Array), TypeError)
    assert.throws(() => (pf as () => number)(), TypeError)
  })

  it('prefault (core/prefault.ts): backs views of freshBytes buffers, and leaves other memory alone', () => {
    const size = 64 << 20
    // Memory it did not allocate (a caller's buffer, say) is not backed: filling it still faults.
    const other = untouched(size)
    prefault(other)
    const expected = faultsToFill(size, page)
    const unbacked = faultsDuring(() => { other.fill(1) })
    assert.ok(unbacked >= expected / 2, `filling a buffer prefault should have left alone took ${unbacked} faults, expected about ${expected}`)
    // A buffer of freshBytes is backed, a step at a time, through a view of it at any offset.
    const bytes = freshBytes(size)
    assert.ok(bytes.every(b => b === 0))
    prefault(bytes.subarray(1))
    const backed = faultsDuring(() => { bytes.fill(1) })
    assert.ok(backed < expected / 8, `filling a prefaulted freshBytes buffer took ${backed} faults`)
  })
})
