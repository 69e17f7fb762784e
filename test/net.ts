/**
 * Helpers shared by the network-level tests: real Global and Local peers on 127.0.0.1 in this
 * process, temp folders, and small assertions. Nothing of dstore is mocked.
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { createGlobal, createLocal, type GlobalPeer, type LocalPeer, type LocalOptions } from '../src/index.js'
import { createNode, type DstoreNode } from '../src/peers/node.js'
import { KIND } from '../src/protocol/constants.js'
import { framePrefix, type FrameReader } from '../src/protocol/framing.js'
import { MessageReader, decodeError } from '../src/protocol/messages.js'
import { tempDir } from './helpers.js'

export const KiB = 1024
export const MiB = 1024 * 1024

/** Things to stop or remove at the end of a describe block, last first. */
export class Cleanup {
  private readonly fns: Array<() => Promise<void>> = []
  add (fn: () => Promise<void>): void { this.fns.push(fn) }
  async run (): Promise<void> {
    const errors: unknown[] = []
    while (this.fns.length > 0) {
      try { await this.fns.pop()!() } catch (err) { errors.push(err) }
    }
    if (errors.length > 0) throw errors[0]
  }

  async dir (prefix = 'dstore-net-'): Promise<string> {
    const d = await tempDir(prefix)
    this.add(d.cleanup)
    return d.path
  }

  async global (repo: string, listen?: string[]): Promise<GlobalPeer> {
    const g = await createGlobal({ repo, listen, sync: false })
    this.add(async () => { await g.stop() })
    return g
  }

  async local (global: GlobalPeer | string[], options: Partial<LocalOptions> = {}): Promise<LocalPeer> {
    const l = await createLocal({ global: Array.isArray(global) ? global : global.multiaddrs, ...options })
    this.add(async () => { await l.stop() })
    return l
  }

  async node (listen: string[] = []): Promise<DstoreNode> {
    const n = await createNode({ listen })
    this.add(async () => { await n.stop() })
    return n
  }
}

export function assertBytes (actual: Uint8Array, expected: Uint8Array, what = 'value'): void {
  assert.equal(actual.length, expected.length, `${what}: length`)
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
    .equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), `${what}: bytes differ`)
}

export async function rejectsWith (promise: Promise<unknown>, name: string): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`)
    return true
  })
}

export async function waitFor (cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export async function * chunked (data: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.length; o += step) yield data.subarray(o, o + step)
}

/** The port of a Global listening on one tcp address. */
export function portOf (global: GlobalPeer): number {
  const ma = multiaddr(global.multiaddrs[0])
  const tcp = ma.getComponents().find(c => c.name === 'tcp')
  assert.ok(tcp?.value != null)
  return Number(tcp.value)
}

/** Reads one frame, or undefined when the stream ended or was reset. */
export async function nextFrame (reader: FrameReader): Promise<Uint8Array | undefined> {
  try { return await reader.next() } catch { return undefined }
}

export function errorOf (frame: Uint8Array | undefined): { id: number, code: string } {
  assert.ok(frame != null, 'expected an ERROR frame')
  const msg = new MessageReader(frame)
  assert.equal(msg.kind, KIND.ERROR)
  return { id: msg.id, code: decodeError(msg).code }
}


/** The byte arrays, one after the other. */
export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

/** A message as one frame: its varint length, then the message. */
export const framed = (m: Uint8Array): Uint8Array => concat(framePrefix(m.length), m)

/** Resident memory of process `pid` now, in MiB (Linux, from /proc/<pid>/status). */
export function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  assert.ok(m != null, 'VmRSS in /proc/<pid>/status')
  return Number(m[1]) / 1024
}
