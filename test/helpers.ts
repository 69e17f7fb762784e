/** Shared test helpers: fixtures, deterministic inputs, temp folders. */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's `test/fixtures` folder (tests run from `dist/test`). */
export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures')

/** Parses a JSON fixture. */
export function fixture<T = any> (name: string): T {
  return JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T
}

/** The BLAKE3 vectors' input: bytes 0, 1, …, 250 repeating. */
export function blake3Input (len: number): Uint8Array {
  const out = new Uint8Array(len)
  for (let i = 0; i < len; i++) out[i] = i % 251
  return out
}

/** The bao vectors' input: a 4-byte little-endian counter starting at 1. */
export function baoInput (len: number): Uint8Array {
  const out = new Uint8Array(len)
  const view = new DataView(out.buffer)
  let i = 0
  for (let n = 1; i + 4 <= len; n++, i += 4) view.setUint32(i, n, true)
  if (i < len) {
    const tail = new Uint8Array(4)
    new DataView(tail.buffer).setUint32(0, Math.floor(len / 4) + 1, true)
    out.set(tail.subarray(0, len - i), i)
  }
  return out
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for hundreds of MiB. */
export function pseudoRandom (len: number, seed = 1): Uint8Array {
  const out = new Uint8Array(len)
  const words = new Uint32Array(out.buffer, 0, Math.floor(len / 4))
  let x = seed | 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    words[i] = x
  }
  for (let i = words.length * 4; i < len; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x
  }
  return out
}

export function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** A fresh temp folder, removed by the returned cleanup. */
export async function tempDir (prefix = 'dstore-test-'): Promise<{ path: string, cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, cleanup: async () => { await rm(path, { recursive: true, force: true }) } }
}

/** Collects an async iterable of bytes into one array. */
export async function collect (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let n = 0
  for await (const p of source) { parts.push(p); n += p.length }
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
