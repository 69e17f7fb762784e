/**
 * Liars: peers that lie about lengths, sizes and digests, drip bytes, ignore flow control or
 * flood a Global with streams, connections and requests. Each one must hit an explicit limit
 * (src/protocol/constants.ts, docs/PROTOCOL.md "Limits"), get a typed error and/or be named in
 * Global's log, leave nothing stored, not make Global's memory jump, and not stop Global from
 * serving a well-behaved Local meanwhile.
 *
 * Global runs in a child process (so its RSS is its own, read from /proc), with a short request
 * timeout so that the slow liars are cut quickly, and a maxBlobSize.
 */
import { strict as assert } from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { blake3 } from '@noble/hashes/blake3.js'
import { cidOfBytes, createLocal, encodeRangeSync, outboard, type LocalPeer } from '../src/index.js'
import { createNode, type DstoreNode } from '../src/peers/node.js'
import {
  BLOB_PROTOCOL, BLOB_WINDOW, INLINE_MAX, KIND, MAX_BLOB_STREAMS, MAX_CONNECTIONS_PER_PEER, MAX_FRAME,
  MAX_RPC_INFLIGHT, MAX_RPC_STREAMS, RESPONSE, RPC_PROTOCOL
} from '../src/protocol/constants.js'
import { FrameReader, framePrefix, incoming, writeFrame, writeRaw } from '../src/protocol/framing.js'
import {
  MessageReader, U64_NONE, decodeDigests, decodeError, encodeBlobGetResponse, encodeGet, encodeGetPartial, encodeGetUseBlob, encodePut, encodePutHead, encodeStat,
  encodeStatResponse
} from '../src/protocol/messages.js'
import { RpcChannel } from '../src/protocol/rpc.js'
import { pseudoRandom, tempDir } from './helpers.js'
import { Cleanup, KiB, MiB, assertBytes, concat, framed, rejectsWith, rssMiB, waitFor } from './net.js'
import { ROOT, blake3Cid } from './proc.js'

const REQUEST_TIMEOUT = 2000
const MAX_BLOB_SIZE = 16 * MiB
/** Connections per peer on the test Global (its default is MAX_CONNECTIONS_PER_PEER). */
const MAX_CONNECTIONS = 8

/** A Global in a child process, with options `dstore global` has no flags for. */
interface Child { proc: ChildProcess, addr: string, stderr: () => string }

/**
 * `slowDisk` (bytes per second): the Global's store is its own fs store in `<repo>/store` behind
 * a slow disk, through the `store` option: a PUT's store takes the pieces libp2p delivers no
 * faster than that. Everything else is the real store.
 */
async function startChild (options: Record<string, unknown>, { slowDisk = 0 } = {}): Promise<Child> {
  const index = pathToFileURL(join(ROOT, 'dist', 'src', 'index.js')).href
  const fsStore = pathToFileURL(join(ROOT, 'dist', 'src', 'core', 'store', 'fs.js')).href
  const code = `
    import { createGlobal } from ${JSON.stringify(index)}
    import { FsBlobStore } from ${JSON.stringify(fsStore)}
    const options = JSON.parse(process.argv[1])
    const slowDisk = Number(process.argv[2])
    if (slowDisk > 0) {
      const real = await FsBlobStore.open({ path: options.repo + '/store', sync: options.sync })
      async function * slowly (source) {
        const started = Date.now()
        let taken = 0
        for await (const piece of source) {
          taken += piece.length
          const wait = started + taken / slowDisk * 1000 - Date.now()
          if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
          yield piece
        }
      }
      options.store = new Proxy(real, {
        get (target, key) {
          if (key === 'put') return (source, o) => target.put(source instanceof Uint8Array ? source : slowly(source), o)
          const value = Reflect.get(target, key, target)
          return typeof value === 'function' ? value.bind(target) : value
        }
      })
    }
    const g = await createGlobal({ ...options, log: (l) => process.stderr.write('dstore: ' + l + '\\n') })
    process.stdout.write(g.multiaddrs[0] + '\\n')
    process.once('SIGTERM', () => { g.stop().then(() => process.exit(0), () => process.exit(1)) })
  `
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code, JSON.stringify(options), String(slowDisk)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  const addr = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (b: Buffer) => { stdout += b.toString('utf8'); if (stdout.includes('\n')) resolve(stdout.trim()) })
    proc.on('exit', (code) => { reject(new Error(`Global exited with ${String(code)}: ${stderr}`)) })
  })
  return { proc, addr, stderr: () => stderr }
}

/** Stops a child Global and waits for it to exit. */
async function stopChild (child: Child): Promise<void> {
  if (child.proc.exitCode !== null) return
  const exited = new Promise(resolve => child.proc.once('exit', resolve))
  child.proc.kill('SIGTERM')
  await exited
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * Everything a stream brings, read from the moment it opens (libp2p's own iterator misses an end
 * that came before it started): its frames, and how it ended.
 */
class Reception {
  readonly frames: MessageReader[] = []
  ended = false
  error: Error | undefined
  readonly done: Promise<void>

  constructor (readonly stream: Stream) {
    this.done = (async () => {
      const reader = new FrameReader(incoming(stream), 64 * MiB)
      try {
        for (;;) {
          const f = await reader.next()
          if (f == null) break
          this.frames.push(new MessageReader(f))
        }
      } catch (err) { this.error = err as Error }
      this.ended = true
    })()
  }

  /** The first ERROR's code and id. */
  errorCode (): { id: number, code: string } | undefined {
    const e = this.frames.find(f => f.kind === KIND.ERROR)
    if (e == null) return undefined
    return { id: e.id, code: decodeError(new MessageReader(e.buf)).code }
  }
}

describe('liars: hostile peers hit explicit limits, and Global keeps serving', function () {
  this.timeout(60_000)
  let dir: { path: string, cleanup: () => Promise<void> }
  let global: Child
  let writer: LocalPeer
  let reader: LocalPeer
  const nodes: DstoreNode[] = []
  let round = 0

  before(async function () {
    dir = await tempDir('dstore-liars-')
    global = await startChild({ repo: dir.path, sync: false, requestTimeout: REQUEST_TIMEOUT, maxBlobSize: MAX_BLOB_SIZE, maxConnectionsPerPeer: MAX_CONNECTIONS })
    writer = await createLocal({ global: [global.addr], connectTimeout: 5000 })
    reader = await createLocal({ global: [global.addr], connectTimeout: 5000 })
    await Promise.all([writer.ready(), reader.ready()])
  })

  after(async function () {
    await Promise.allSettled([writer?.stop(), reader?.stop(), ...nodes.map(async n => { await n.stop() })])
    if (global != null) await stopChild(global)
    await dir?.cleanup()
  })

  function rss (): number {
    return rssMiB(global.proc.pid as number)
  }

  function logged (re: RegExp): string[] {
    return global.stderr().split('\n').filter(l => re.test(l))
  }

  /** A well-behaved Local's round trips, inline and on a blob stream: Global still serves. */
  async function serves (): Promise<void> {
    for (const size of [1000, INLINE_MAX + 1000]) {
      const data = pseudoRandom(size, 7000 + round++)
      const cid = await writer.put(data)
      assertBytes(await reader.get(cid), data, 'an honest round trip')
    }
  }

  /** Honest round trips all along while `liar` runs; both must succeed. */
  async function servesDuring<T> (liar: Promise<T>): Promise<T> {
    let done = false
    const honest = (async () => {
      let n = 0
      do { await serves(); n++ } while (!done)
      return n
    })()
    try { return await liar } finally {
      done = true
      assert.ok(await honest >= 1)
    }
  }

  async function connect (): Promise<Connection> {
    const node = await createNode({})
    nodes.push(node)
    return await node.dial(multiaddr(global.addr))
  }

  /** None of `values` is stored, and no put left a partial file behind. */
  async function nothingStored (...values: Uint8Array[]): Promise<void> {
    for (const v of values) assert.equal(await writer.has(blake3Cid(v)), false, `a ${v.length}-byte value a liar sent was stored`)
    await waitFor(async () => (await readdir(join(dir.path, 'store', 'tmp'))).length === 0, 5000, 'no partial put in tmp/')
  }

  it('refuses a frame length above MAX_FRAME on rpc and blob streams before buffering it: ERROR ERR_PROTOCOL, a reset, a log line', async function () {
    const conn = await connect()
    const junk = pseudoRandom(24 * MiB, 1)
    const before = rss()
    const lengths = [MAX_FRAME + 1, 2 ** 40, 2 ** 53 - 1]
    await servesDuring((async () => {
      for (const protocol of [RPC_PROTOCOL, BLOB_PROTOCOL]) {
        for (const length of lengths) {
          const stream = await conn.newStream(protocol)
          const got = new Reception(stream)
          // The prefix, then 24 MiB as if they were that frame: Global must not wait for them.
          try { stream.send(concat(framePrefix(length), junk)) } catch {}
          await got.done
          assert.deepEqual(got.errorCode(), { id: 0, code: 'ERR_PROTOCOL' }, `${protocol}, a ${length}-byte frame`)
          assert.ok(stream.status === 'reset' || got.error != null, `the stream was reset (${stream.status})`)
        }
      }
    })())
    const after = rss()
    console.log(`      Global RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB after 6 oversized frames, each followed by 24 MiB`)
    assert.ok(after - before < 64, `Global's RSS went from ${before.toFixed(0)} to ${after.toFixed(0)} MiB after being offered ${6 * 24} MiB of oversized frames`)
    await waitFor(() => logged(/protocol error from .*frame of \d+\+ bytes exceeds the limit/).length >= 6, 5000, 'six log lines')
  })

  it('refuses a streamed PUT whose size does not match its bytes, fewer or more, and stores nothing', async function () {
    const conn = await connect()
    const data = pseudoRandom(300 * KiB, 2)
    const cases = [
      { what: 'fewer bytes than announced, then the end', head: { size: data.length + 1000 }, body: data, code: 'ERR_VERIFICATION_FAILED' },
      { what: 'more bytes than announced', head: { size: data.length - 1000 }, body: data, code: 'ERR_PROTOCOL' },
      { what: 'the right digest, a size too large', head: { digest: blake3(data), size: data.length + 1 }, body: data, code: 'ERR_VERIFICATION_FAILED' },
      { what: 'the right digest, a size too small', head: { digest: blake3(data), size: 10 }, body: data, code: 'ERR_PROTOCOL' },
      { what: 'nothing after the head', head: { size: 5000 }, body: new Uint8Array(0), code: 'ERR_VERIFICATION_FAILED' }
    ]
    for (const c of cases) {
      const stream = await conn.newStream(BLOB_PROTOCOL)
      const got = new Reception(stream)
      stream.send(concat(framed(encodePutHead(c.head)), c.body))
      await stream.close().catch(() => {})
      await got.done
      assert.equal(got.errorCode()?.code, c.code, c.what)
      assert.ok(!got.frames.some(f => f.kind === (KIND.PUT | RESPONSE)), `${c.what}: not acknowledged`)
    }
    await nothingStored(data)
    await serves()
  })

  it('refuses a PUT of bytes that do not hash to the CID it claims with VerificationError, inline and streamed, and stores nothing', async function () {
    const conn = await connect()
    const claimed = pseudoRandom(200 * KiB, 3)
    const sent = pseudoRandom(200 * KiB, 4)
    const big = pseudoRandom(3 * MiB, 5)
    // Inline on the rpc stream.
    const rpc = await conn.newStream(RPC_PROTOCOL)
    const answers = new Reception(rpc)
    rpc.send(framed(encodePut(41, blake3(claimed), sent)))
    await waitFor(() => answers.frames.length > 0, 5000, 'an answer')
    assert.equal(answers.frames[0].id, 41)
    assert.equal(answers.errorCode()?.code, 'ERR_VERIFICATION_FAILED')
    // Streamed, with and without the right size, one byte changed in a large value.
    const flipped = big.slice()
    flipped[2 * MiB] ^= 1
    for (const [head, body] of [[{ digest: blake3(claimed) }, sent], [{ digest: blake3(big), size: big.length }, flipped]] as const) {
      const stream = await conn.newStream(BLOB_PROTOCOL)
      const got = new Reception(stream)
      stream.send(concat(framed(encodePutHead(head)), body))
      await stream.close().catch(() => {})
      await got.done
      assert.equal(got.errorCode()?.code, 'ERR_VERIFICATION_FAILED')
    }
    await nothingStored(claimed, sent, big, flipped)
    await rpc.close()
    await serves()
  })

  it(`cuts slowloris senders (one byte a second) on rpc and blob streams after the request timeout (${REQUEST_TIMEOUT} ms): ERR_TIMEOUT, a reset, a log line`, async function () {
    const conn = await connect()
    const drip = async (stream: Stream, bytes: Uint8Array): Promise<number> => {
      const started = Date.now()
      const got = new Reception(stream)
      // At most 8 bytes (8 s): the timeout must have cut it well before.
      for (const b of bytes.subarray(0, 8)) {
        if (got.ended) break
        try { stream.send(Uint8Array.of(b)) } catch { break }
        await Promise.race([sleep(1000), got.done])
      }
      await Promise.race([got.done, sleep(2000)])
      assert.ok(got.ended, `a slowloris was not cut after ${Date.now() - started} ms`)
      const code = got.errorCode()
      assert.equal(code?.code, 'ERR_TIMEOUT', `a slowloris gets ERR_TIMEOUT (got ${JSON.stringify(code)}, ${String(got.error)})`)
      assert.ok(got.error != null || stream.status !== 'open', 'the stream is closed')
      return Date.now() - started
    }
    const value = pseudoRandom(100 * KiB, 6)
    const times = await servesDuring(Promise.all([
      // A request frame, one byte at a time, on the rpc stream.
      drip(await conn.newStream(RPC_PROTOCOL), framed(encodeStat(1, [blake3(value), blake3(value)]))),
      // A blob stream head, one byte at a time.
      drip(await conn.newStream(BLOB_PROTOCOL), framed(encodePutHead({ size: value.length }))),
      // A whole head at once, then the value one byte at a time.
      (async () => {
        const stream = await conn.newStream(BLOB_PROTOCOL)
        stream.send(framed(encodePutHead({ digest: blake3(value), size: value.length })))
        return await drip(stream, value.subarray(0, 60))
      })()
    ]))
    console.log(`      slowloris cut after ${times.join(', ')} ms`)
    // Not before the timeout (an honest slow start is allowed that long), and not much after it.
    for (const t of times) assert.ok(t >= REQUEST_TIMEOUT - 100 && t < 4 * REQUEST_TIMEOUT + 2000, `cut after ${t} ms`)
    await waitFor(() => logged(/protocol error from .*(a frame took more than|blob stream head: no answer within|less than \d+ bytes moved in)/).length >= 3, 5000, 'three log lines')
    assert.equal(logged(/a frame took more than 2000 ms/).length, 1)
    await nothingStored(value)
  })

  it(`refuses blob streams beyond MAX_BLOB_STREAMS (${MAX_BLOB_STREAMS}) and rpc streams beyond MAX_RPC_STREAMS (${MAX_RPC_STREAMS}) on one connection`, async function () {
    const conn = await connect()
    const outcomes = await servesDuring((async () => {
      // All opened at once. The blob streams send no head, so every accepted one stays busy until
      // the head times out (ERR_TIMEOUT); the rpc streams each send one STAT.
      const blobs = await Promise.all(Array.from({ length: MAX_BLOB_STREAMS + 16 }, async () => new Reception(await conn.newStream(BLOB_PROTOCOL))))
      const rpcs = await Promise.all(Array.from({ length: MAX_RPC_STREAMS + 4 }, async (_, i) => {
        const stream = await conn.newStream(RPC_PROTOCOL)
        const got = new Reception(stream)
        try { stream.send(framed(encodeStat(i + 1, []))) } catch {} // refused already
        return got
      }))
      await Promise.all(blobs.map(async r => { await r.done }))
      await waitFor(() => rpcs.every(r => r.ended || r.frames.length > 0), 5000, 'every rpc stream answered or reset')
      const refused = (r: Reception): boolean => r.frames.length === 0 && r.ended && r.stream.status === 'reset'
      const outcome = {
        blobsServed: blobs.filter(r => r.errorCode()?.code === 'ERR_TIMEOUT').length,
        blobsRefused: blobs.filter(refused).length,
        rpcsAnswered: rpcs.filter(r => r.frames.some(f => f.kind === (KIND.STAT | RESPONSE))).length,
        rpcsRefused: rpcs.filter(refused).length
      }
      for (const r of rpcs) await r.stream.close().catch(() => {})
      return outcome
    })())
    assert.deepEqual(outcomes, { blobsServed: MAX_BLOB_STREAMS, blobsRefused: 16, rpcsAnswered: MAX_RPC_STREAMS, rpcsRefused: 4 })
    await serves()
  })

  it(`closes connections beyond maxConnectionsPerPeer (${MAX_CONNECTIONS} here; default ${MAX_CONNECTIONS_PER_PEER}) from one peer, and logs it`, async function () {
    const node = await createNode({})
    nodes.push(node)
    // One after the other: concurrent dials to one peer are merged into one.
    const conns = await servesDuring((async () => {
      const out: Array<Connection | undefined> = []
      for (let i = 0; i < 20; i++) out.push(await node.dial(multiaddr(global.addr), { force: true }).catch(() => undefined))
      return out
    })())
    await waitFor(() => node.getConnections().filter(c => c.status === 'open').length <= MAX_CONNECTIONS, 5000, 'the extra connections to close')
    const open = node.getConnections().filter(c => c.status === 'open')
    assert.ok(conns.filter(c => c != null).length > MAX_CONNECTIONS, 'the peer did open more than the limit')
    assert.ok(open.length >= 1 && open.length <= MAX_CONNECTIONS, `${open.length} connections stay open`)
    // The ones left work.
    const stream = await open[0].newStream(RPC_PROTOCOL)
    const got = new Reception(stream)
    stream.send(framed(encodeStat(5, [])))
    await waitFor(() => got.frames.length > 0, 5000, 'an answer on a remaining connection')
    assert.equal(got.frames[0].kind, KIND.STAT | RESPONSE)
    await stream.close()
    await waitFor(() => logged(new RegExp(`protocol error from ${node.peerId.toString()}: more than ${MAX_CONNECTIONS} connections`)).length === 1, 5000, `one log line (${global.stderr().slice(-500)}; ${open.length} open)`)
    await serves()
  })

  /**
   * Floods `stream` with pipelined requests, a thousand per write (by default a STAT of one key),
   * until Global stops taking them for a second.
   */
  async function flood (stream: Stream, offered: number, request = (id: number) => encodeStat(id, [pseudoRandom(32, id)])): Promise<{ taken: number, requests: number }> {
    const batch = concat(...Array.from({ length: 1000 }, (_, i) => framed(request(i + 1))))
    let sent = 0
    let stalledSince: number | undefined
    while (sent < offered && stream.status === 'open') {
      if (stream.writableNeedsDrain) {
        stalledSince ??= Date.now()
        if (Date.now() - stalledSince > 1000) break
        await sleep(20)
        continue
      }
      stalledSince = undefined
      stream.send(batch)
      sent += batch.length
      await new Promise(resolve => setImmediate(resolve))
    }
    return { taken: sent - stream.writeBufferLength, requests: sent / batch.length * 1000 }
  }

  it(`stops reading a peer that pipelines past MAX_RPC_INFLIGHT (${MAX_RPC_INFLIGHT}) and reads no answers: it takes about one stream window, not what is offered`, async function () {
    // A Global with the default request timeout, so that only this limit can stop the flood.
    const other = await tempDir('dstore-liars-')
    const patient = await startChild({ repo: other.path, sync: false })
    try {
      const node = await createNode({})
      nodes.push(node)
      const stream = await (await node.dial(multiaddr(patient.addr))).newStream(RPC_PROTOCOL)
      // A value to ask for: each answer is ~200 KiB, each request 50 bytes.
      const value = pseudoRandom(200 * KiB, 11)
      const got = new Reception(stream)
      stream.send(framed(encodePut(1, blake3(value), value)))
      await waitFor(() => got.frames.length > 0, 5000, 'the PUT answer')
      assert.equal(got.frames[0].kind, KIND.PUT | RESPONSE)
      // Now we read nothing: our yamux stops granting Global window, so its answers back up.
      stream.pause()
      const rssOf = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${patient.proc.pid as number}/status`, 'utf8'))![1]) / 1024
      const before = rssOf()
      const offered = 160 * MiB
      const digest = blake3(value)
      const { taken, requests } = await flood(stream, offered, id => encodeGet(id, { digest, offset: 0, length: U64_NONE, inline: true }))
      const after = rssOf()
      console.log(`      offered ${(offered / MiB).toFixed(0)} MiB of requests; Global took ${(taken / MiB).toFixed(1)} MiB (${requests} requests sent) and stopped reading; RSS ${before.toFixed(0)} → ${after.toFixed(0)} MiB`)
      assert.ok(requests > MAX_RPC_INFLIGHT)
      assert.equal(stream.status, 'open', 'held back, not reset (its request timeout is 30 s)')
      assert.ok(taken < 40 * MiB, `Global took ${(taken / MiB).toFixed(1)} MiB of requests it could not answer`)
      // What it holds: the answers in progress (up to MAX_RPC_INFLIGHT × 256 KiB), a window of them
      // on their way, and garbage not yet collected: bounded, but not small.
      assert.ok(after < 400, `Global's RSS went from ${before.toFixed(0)} to ${after.toFixed(0)} MiB`)
      // Meanwhile, with the flooding stream still held, a well-behaved Local is served.
      const honest = await createLocal({ global: [patient.addr], connectTimeout: 5000 })
      try {
        const data = pseudoRandom(INLINE_MAX + 1000, 12)
        assertBytes(await honest.get(await honest.put(data)), data, 'an honest round trip')
        assertBytes(await honest.get(blake3Cid(value)), value, 'the flooded value, to an honest Local')
      } finally { await honest.stop() }
      assert.equal(stream.status, 'open', 'the flood is still held')
      stream.abort(new Error('done'))
      await node.stop()
    } finally {
      await stopChild(patient)
      await other.cleanup()
    }
  })

  it(`resets an rpc stream whose peer reads none of the answers for the request timeout (${REQUEST_TIMEOUT} ms), and logs it`, async function () {
    const conn = await connect()
    const stream = await conn.newStream(RPC_PROTOCOL)
    stream.pause()
    const started = Date.now()
    await servesDuring((async () => {
      await flood(stream, 64 * MiB)
      await waitFor(() => stream.status !== 'open', REQUEST_TIMEOUT + 5000, 'Global to reset the stream')
    })())
    assert.ok(Date.now() - started >= REQUEST_TIMEOUT - 100, 'not before the request timeout')
    await waitFor(() => logged(/protocol error from .*read none of our answers for 2000 ms/).length >= 1, 5000, 'a log line')
    await serves()
  })

  it('resets a PUT sender that ignores its credit as soon as it gets ahead of it, with a log line saying how far; an honest PUT to the same slow store is stored', async function () {
    // A sender can get ahead of its credit only where the store is slower than the network: on
    // the Global above, whose store keeps up with loopback, a liar is just a fast PUT. So this
    // Global's fs store sits behind a slow disk of 2 MB/s per put. A liar is cut once more than
    // its first window (8 MiB) arrives before the store has consumed half of one (4 MiB, 2.1 s
    // here): 8 liars at once need about 30 MB/s of loopback TLS for that, a tenth of what a
    // loaded 2-core machine does.
    const slowDir = await tempDir('dstore-liars-slow-')
    let slow: Child | undefined
    let honest: LocalPeer | undefined
    try {
      const g = await startChild({ repo: slowDir.path, sync: false, requestTimeout: REQUEST_TIMEOUT, maxBlobSize: MAX_BLOB_SIZE }, { slowDisk: 2_000_000 })
      slow = g
      // No cache: its get and has ask the slow Global.
      honest = await createLocal({ global: [g.addr], connectTimeout: 5000, cacheSize: 0 })
      const node = await createNode({})
      nodes.push(node)
      const conn = await node.dial(multiaddr(g.addr))
      // Meanwhile an honest Local puts a value past the first window: it waits for credit, so it is stored.
      const honestValue = pseudoRandom(BLOB_WINDOW + MiB, 4999)
      const honestPut = honest.put(honestValue)
      // Head + 15 MiB in one write, whatever CREDIT says, on 8 streams at once.
      const values = Array.from({ length: 8 }, (_, i) => pseudoRandom(15 * MiB, 5000 + i))
      const receptions = await Promise.all(values.map(async value => {
        const stream = await conn.newStream(BLOB_PROTOCOL)
        const got = new Reception(stream)
        try { stream.send(concat(framed(encodePutHead({})), value)); await stream.close() } catch {}
        await got.done
        return got
      }))
      for (const got of receptions) {
        assert.ok(!got.frames.some(f => f.kind === (KIND.PUT | RESPONSE)), 'a liar\'s PUT was answered as stored')
        assert.ok(got.stream.status === 'reset' || got.error != null, `the liar's stream was reset (${got.stream.status})`)
      }
      const honestCid = blake3Cid(honestValue)
      assert.equal((await honestPut).toString(), honestCid.toString(), 'the honest PUT was stored')
      assertBytes(await honest.get(honestCid), honestValue, 'the honest value, from the slow Global')
      for (const v of values) assert.equal(await honest.has(cidOfBytes(v)), false, 'a value a credit liar sent was stored')
      await waitFor(async () => (await readdir(join(slowDir.path, 'store', 'tmp'))).length === 0, 5000, 'no partial put in tmp/')
      const cuts = (): string[] => g.stderr().split('\n').filter(l => /protocol error from .*the sender sent \d+ bytes, past its credit of \d+/.test(l))
      await waitFor(() => cuts().length >= values.length, 5000, `a credit cut logged for each liar:\n${g.stderr()}`)
      assert.equal(cuts().length, values.length, `one credit cut logged per liar:\n${g.stderr()}`)
      for (const line of cuts()) {
        const [sent, credit] = /sent (\d+) bytes, past its credit of (\d+)/.exec(line)!.slice(1).map(Number)
        // Cut at the first piece past its credit; a piece is what libp2p delivers at once (one
        // yamux frame, up to a stream window), so the overshoot is at most a window.
        assert.ok(credit >= BLOB_WINDOW && sent <= 15 * MiB && sent - credit <= 16 * MiB, `cut once past its credit: ${line}`)
      }
    } finally {
      try {
        await honest?.stop()
      } finally {
        try {
          if (slow !== undefined) await stopChild(slow)
        } finally {
          await slowDir.cleanup()
        }
      }
    }
  })

  it(`refuses a PUT above maxBlobSize (${MAX_BLOB_SIZE / MiB} MiB) with TooLargeError before receiving it all`, async function () {
    // Announced: refused on the head alone.
    const conn = await connect()
    const stream = await conn.newStream(BLOB_PROTOCOL)
    const got = new Reception(stream)
    stream.send(framed(encodePutHead({ size: 64 * MiB })))
    await Promise.race([got.done, sleep(5000)])
    assert.equal(got.errorCode()?.code, 'ERR_TOO_LARGE')
    stream.abort(new Error('done'))
    // Not announced (a stream of unknown length): refused once past the limit, long before its end.
    let yielded = 0
    async function * source (): AsyncGenerator<Uint8Array> {
      const piece = pseudoRandom(MiB, 10)
      for (let i = 0; i < 256; i++) { yielded += piece.length; yield piece }
    }
    await rejectsWith(writer.put(source()), 'TooLargeError')
    assert.ok(yielded < MAX_BLOB_SIZE + BLOB_WINDOW + 2 * MiB, `the Local read ${yielded / MiB} MiB of a 256 MiB value before the refusal`)
    await nothingStored()
    await serves()
  })
})

describe('liars: a Global that ignores the credit a Local grants', function () {
  this.timeout(30_000)
  const c = new Cleanup()

  after(async () => { await c.run() })

  /**
   * A Global that answers a GET of `value` with its first `covered` bytes inline (none: all on
   * the blob stream), then pushes the rest of the verified stream ignoring CREDIT. A Local
   * cats it, holds the first piece, and must reset the stream once the liar gets ahead.
   */
  async function catFromCreditLiar (value: Uint8Array, covered: number): Promise<void> {
    const ob = outboard(value)
    const start = encodeRangeSync(value, ob.outboard, { offset: 0, length: covered })
    const rest = encodeRangeSync(value, ob.outboard, { offset: covered, length: value.length - covered })
    const liar = await c.node(['/ip4/127.0.0.1/tcp/0'])
    let pushed = 0
    await liar.handle(RPC_PROTOCOL, (stream: Stream) => {
      // eslint-disable-next-line no-new
      new RpcChannel(stream, async (msg) => {
        if (msg.kind === KIND.STAT) return encodeStatResponse(msg.id, decodeDigests(msg).map(() => undefined))
        return covered === 0 ? encodeGetUseBlob(msg.id, value.length) : encodeGetPartial(msg.id, value.length, covered, start)
      })
    })
    await liar.handle(BLOB_PROTOCOL, (stream: Stream) => {
      void (async () => {
        await new FrameReader(stream, MAX_FRAME).next()
        await writeFrame(stream, encodeBlobGetResponse(value.length))
        for (let o = 0; o < rest.length && stream.status === 'open'; o += 256 * KiB) {
          await writeRaw(stream, rest.subarray(o, o + 256 * KiB))
          pushed = o + 256 * KiB
        }
      })().catch(() => {})
    })
    const local = await c.local(liar.getMultiaddrs().map(String))
    const pieces = local.cat(cidOfBytes(value))[Symbol.asyncIterator]()
    const first = await pieces.next()
    assert.equal(first.done, false)
    assertBytes(first.value, value.subarray(0, first.value.length), 'the first verified piece')
    // The Local consumes nothing more: the liar pushes on until the Local resets the stream.
    await waitFor(() => pushed > BLOB_WINDOW, 10_000, 'the liar to push past the window')
    await new Promise(resolve => setTimeout(resolve, 500))
    await rejectsWith((async () => { for (;;) if ((await pieces.next()).done === true) return })(), 'ProtocolError')
    assert.ok(pushed < rest.length, `the liar was cut after ${pushed} of ${rest.length} bytes`)
    assert.equal(await local.cache.has(cidOfBytes(value)), false)
  }

  it('makes a Local reset the GET with ProtocolError once it gets ahead, however slowly the Local consumes', async function () {
    await catFromCreditLiar(pseudoRandom(24 * MiB, 77), 0)
  })

  it('holds it to its credit from its answer on, while the Local still consumes the start answered inline', async function () {
    await catFromCreditLiar(pseudoRandom(24 * MiB, 78), 15 * 16 * KiB)
  })
})
