/**
 * A multi-source download of one value into a {@link PartialValue}: the driver of the pure
 * {@link PieceScheduler}. Global answered a swarm GET with the value's size and a list of other
 * Locals holding or fetching it; this dials them, asks each what it holds (HAVE, every
 * {@link HAVE_POLL_MS} while it is not complete), refreshes the list from Global (SOURCES,
 * every {@link REFRESH_MS}), and fetches pieces from several sources at once, Global last.
 *
 * Invariants (docs/PROTOCOL.md, "Multi-source download"):
 * - Every byte is verified by the decoder (`getRange`, against a RequesterContext for the peer,
 *   exactly as against Global) before `verified()` marks it; a piece is held, and so served
 *   onward, only once all its bytes were verified.
 * - One writer per byte of `data`: only the first request of a piece decodes straight into the
 *   value's buffer (the decoder's target also holds bytes not yet verified); every later one
 *   (a retry, an endgame duplicate) decodes into its own buffer, copied in once verified and
 *   only after that first writer has stopped. So no held byte is ever written again.
 * - A peer whose bytes fail verification is dropped for this value and reported to Global
 *   (BADPEER); its pieces are fetched elsewhere; the caller sees no error. A peer that lacks a
 *   piece (NotFound), fails, stalls or vanishes: the piece goes elsewhere.
 * - Global's NotFoundError, an eviction of the key, or the partial being closed (coherence)
 *   fails the download with NotFoundError. The caller's abort stops everything and closes the
 *   streams to peers.
 * - Bounded: at most {@link MAX_PEERS} live peers and {@link MAX_DIALS} dials, {@link MAX_GLOBAL_FAILURES} failed
 *   requests to Global, and {@link IDLE_MS} without a verified byte.
 */
import { setMaxListeners } from 'node:events'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { StreamVerificationError } from '../../core/bao/index.js'
import { NotFoundError, PermissionDeniedError, ProtocolError, TimeoutError } from '../../core/errors.js'
import { abortError, linkSignals, raceAbort } from '../../core/abort.js'
import { DEFAULT_WAIT_MS, GLOBAL, PieceScheduler, type PieceRequest, type PieceSet } from '../../core/swarm/scheduler.js'
import { pieceRange } from '../../core/swarm/pieces.js'
import type { PartialValue } from '../../core/swarm/partial.js'
import { RPC_PROTOCOL } from '../../protocol/constants.js'
import { getRange, type RequesterContext } from '../../protocol/requester.js'
import { RpcChannel } from '../../protocol/rpc.js'
import { askHave, findSources, reportBadPeer, type SwarmSource } from '../../protocol/swarm-requester.js'
import type { DstoreNode } from '../node.js'
import type { GlobalRoute } from './globals.js'
import type { SwarmCounters } from './swarm-stats.js'
import { callGlobal, isChannelFailure } from './retry.js'

/** How often a peer that is not complete is asked what it holds. */
export const HAVE_POLL_MS = 500
/** How often Global is asked for the sources again. */
export const REFRESH_MS = 1000
/** Peers used at once per download (live: not dropped). */
export const MAX_PEERS = 12
/** Peers dialled at most per download, dropped ones included. */
export const MAX_DIALS = 4 * MAX_PEERS
/** Failed requests to Global after which the download fails. */
export const MAX_GLOBAL_FAILURES = 8
/** Time without a verified byte from anyone after which the download fails (TimeoutError). */
export const IDLE_MS = 30_000
/** Time for one dial to a peer (and its rpc stream). */
export const DIAL_TIMEOUT_MS = 10_000
/** Dials of a peer before it is given up for this download, and the backoff between them (times the attempt). */
export const DIAL_ATTEMPTS = 3
const DIAL_BACKOFF_MS = 500
/** HAVE requests in a row a peer may fail before it is dropped. */
const HAVE_FAILURES = 3
/** Distinct peers remembered for the `peersUsed` counter. */
const MAX_PEERS_REMEMBERED = 10_000

/** What a download needs of its Local. */
export interface SwarmFetchContext {
  node: DstoreNode
  global: GlobalRoute
  counters: SwarmCounters
  /** Wire bytes received from peers (Traffic 'peer'). */
  onPeerBytes: (n: number) => void
  requestTimeout?: number
}

export interface SwarmDownloadOptions {
  signal: AbortSignal
  /** Whether Global evicted the key meanwhile (coherence Watch). */
  evicted: () => boolean
  /** A piece became held (the verified prefix may have grown). */
  onPiece?: () => void
  /** Scheduler tuning (tests). */
  perPeer?: number
  perGlobal?: number
  stallMs?: number
  waitMs?: number
}

/** A peer being used as a source. */
interface PeerLink {
  readonly id: string
  ctx: RequesterContext | undefined
  ready: Promise<RequesterContext>
  channel: RpcChannel | undefined
  /** Whether it answered HAVE complete (no more polling). */
  complete: boolean
  /** When it became a source (Date.now()). */
  readonly added: number
}

interface Task {
  readonly req: PieceRequest
  readonly controller: AbortController
  done: Promise<void>
}

const NOTHING: PieceSet = { get: () => false, count: () => 0 }

/**
 * Downloads every piece of `key` into `partial`, starting with `sources` (from Global's
 * answer). Resolves once every piece is held.
 * @throws {NotFoundError} when Global no longer has the value, or it was evicted meanwhile.
 * @throws {AbortError} when `options.signal` aborts.
 */
export async function swarmDownload (ctx: SwarmFetchContext, key: CID, partial: PartialValue, sources: SwarmSource[], options: SwarmDownloadOptions): Promise<void> {
  const download = new SwarmDownload(ctx, key, partial, options)
  await download.run(sources)
}

class SwarmDownload {
  private readonly sched: PieceScheduler
  private readonly digest: Uint8Array
  private readonly peers = new Map<string, PeerLink>()
  private readonly tasks = new Map<number, Task>()
  /** The first request of each piece, which decodes into `partial.data`, while it runs. */
  private readonly writers = new Map<number, Task>()
  /** Requests running per piece (the `fetching` bits). */
  private readonly running = new Map<number, number>()
  /** Pieces some request has already been started for (later ones decode into their own buffer). */
  private readonly touched = new Set<number>()
  private failure: Error | undefined
  private wakeUp: (() => void) | undefined
  private lastVerified = Date.now()
  private finished = false
  private readonly self: string

  constructor (private readonly ctx: SwarmFetchContext, private readonly key: CID, private readonly partial: PartialValue,
    private readonly options: SwarmDownloadOptions) {
    this.digest = key.multihash.digest
    this.self = ctx.node.peerId.toString()
    // Every request and dial of this download listens to its signal (bounded: MAX_PEERS dials,
    // 2 requests per peer, 4 at Global); the default warning at 10 would be noise.
    setMaxListeners(4 * MAX_PEERS + 16, options.signal)
    this.sched = new PieceScheduler({
      pieces: partial.pieces, perPeer: options.perPeer, perGlobal: options.perGlobal, stallMs: options.stallMs, waitMs: options.waitMs ?? DEFAULT_WAIT_MS
    })
    for (let i = 0; i < partial.pieces; i++) if (partial.have.get(i)) this.sched.markHeld(i)
  }

  async run (sources: SwarmSource[]): Promise<void> {
    const { signal } = this.options
    const onAbort = (): void => { this.wake() }
    signal.addEventListener('abort', onAbort)
    this.addSources(sources)
    let lastRefresh = Date.now()
    let refreshing = false
    try {
      while (!this.sched.done()) {
        this.check()
        this.handleStalls()
        this.pump()
        if (Date.now() - lastRefresh >= REFRESH_MS && !refreshing) {
          lastRefresh = Date.now()
          refreshing = true
          this.spawn(this.refresh().finally(() => { refreshing = false }))
        }
        if (Date.now() - this.lastVerified > IDLE_MS) throw new TimeoutError(`no verified byte of ${this.key.toString()} from any source for ${IDLE_MS} ms`)
        await this.sleep(100)
      }
      this.check()
      this.ctx.counters.downloads++
    } finally {
      this.finished = true
      signal.removeEventListener('abort', onAbort)
      for (const t of this.tasks.values()) t.controller.abort(new Error('download over'))
      // No request may write into the value's buffer once this returns.
      await Promise.allSettled([...this.tasks.values()].map(async t => await t.done))
      // HAVE polls and refreshes see `finished` and end by themselves (not waited for: a poll
      // may be sleeping between two asks).
      for (const p of this.peers.values()) p.channel?.abort(new Error('download over'))
    }
  }

  /** Throws what ends the download now, if anything does. */
  private check (): void {
    if (this.options.signal.aborted) throw abortError(this.options.signal)
    if (this.failure !== undefined) throw this.failure
    if (this.options.evicted()) throw new NotFoundError(`${this.key.toString()} was deleted during the download`)
    // Closed by an invalidation (NotFoundError) or by the Local stopping (ClosedError).
    if (this.partial.closed) throw this.partial.closeReason ?? new NotFoundError(`the download of ${this.key.toString()} was closed`)
  }

  /** Starts every request the scheduler wants now. */
  private pump (): void {
    for (let req = this.sched.next(); req !== undefined; req = this.sched.next()) this.startTask(req)
  }

  private wake (): void {
    const w = this.wakeUp
    this.wakeUp = undefined
    w?.()
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.wakeUp = done
    })
  }

  /** Background work (HAVE polls, refreshes, reports): best effort, each ends by itself once the download is over. */
  private spawn (p: Promise<void>): void {
    p.catch(() => {})
  }

  // ---- sources -------------------------------------------------------------------------------

  private addSources (sources: SwarmSource[]): void {
    for (const s of sources) {
      if (s.peerId === this.self || this.sched.knows(s.peerId)) continue
      // Live peers are bounded, and so are dials in all: a dropped peer frees its place for a
      // new source from the next refresh (counting it kept a Local that had seen 12 on Global).
      if (this.sched.livePeers().length >= MAX_PEERS || this.peers.size >= MAX_DIALS || s.addrs.length === 0) continue
      // Known as "may have anything" (so pieces wait for it rather than go to Global) but asked
      // for nothing until it is connected and its HAVE says what it holds, complete or not: a
      // request to a peer still being dialled would only stall, and count against it.
      this.sched.addPeer(s.peerId, false)
      this.connect(s.peerId, s.addrs)
    }
  }

  /** Asks Global for the sources again. Global no longer having the value fails the download. */
  private async refresh (): Promise<void> {
    const found = await callGlobal(this.ctx.global, { signal: this.options.signal, key: this.digest }, async g => await findSources(g, this.digest, { signal: this.options.signal }))
    if (found === undefined) { this.failure ??= new NotFoundError(`${this.key.toString()} is not stored on Global`); this.wake(); return }
    if (!this.finished) this.addSources(found.sources)
    this.wake()
  }

  private connect (id: string, addrs: Multiaddr[]): void {
    const link: PeerLink = { id, ctx: undefined, channel: undefined, complete: false, added: Date.now(), ready: undefined as unknown as Promise<RequesterContext> }
    link.ready = (async () => {
      const dialable = addrs.map(a => a.getComponents().some(c => c.code === 421) ? a : a.encapsulate(multiaddr(`/p2p/${id}`)))
      const { connection, stream } = await this.open(dialable)
      // A downloader answers nothing a source asks on this channel.
      const channel = new RpcChannel(stream, async () => { throw new PermissionDeniedError('a downloading Local answers no requests on this channel') }, {
        requestTimeout: this.ctx.requestTimeout,
        onClose: () => { this.lost(id) }
      })
      link.channel = channel
      if (this.finished) { channel.abort(new Error('download over')); throw new Error('download over') }
      link.ctx = { channel, connection, requestTimeout: this.ctx.requestTimeout, onBytes: (dir, n) => { if (dir === 'in') this.ctx.onPeerBytes(n) } }
      return link.ctx
    })()
    link.ready.catch(() => { this.lost(id) })
    this.peers.set(id, link)
    this.spawn(this.poll(link))
  }

  /**
   * Dials a peer and opens the rpc stream to it, {@link DIAL_ATTEMPTS} times at most: a flash
   * crowd of Locals dialling each other on busy hosts sees handshakes time out that a second
   * try completes (bench/swarm.ts dropped most peers at the dial before this).
   */
  private async open (dialable: Multiaddr[]): Promise<{ connection: Connection, stream: Stream }> {
    for (let attempt = 1; ; attempt++) {
      const signal = AbortSignal.any([this.options.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)])
      try {
        const connection = await this.ctx.node.dial(dialable, { signal })
        const stream = await connection.newStream(RPC_PROTOCOL, { signal })
        return { connection, stream }
      } catch (err) {
        if (attempt >= DIAL_ATTEMPTS || this.finished || this.options.signal.aborted) throw err
        await raceAbort(new Promise(resolve => setTimeout(resolve, DIAL_BACKOFF_MS * attempt)), this.options.signal)
      }
    }
  }

  /** Asks `link` what it holds until it is complete, dropped, or the download ends. */
  private async poll (link: PeerLink): Promise<void> {
    const ctx = await link.ready
    const { signal } = this.options
    let failures = 0
    while (!this.finished && !link.complete && !this.sched.isDropped(link.id)) {
      try {
        const info = await askHave(ctx, this.digest, { signal })
        if (info === undefined) {
          // Listed as fetching, it may not have begun yet (Global lists it from its GET on): it
          // stays "may fetch anything" for its first wait; after that, it has nothing.
          if (Date.now() - link.added >= (this.options.waitMs ?? DEFAULT_WAIT_MS)) this.sched.updatePeer(link.id, { complete: false, have: NOTHING, fetching: NOTHING })
        } else if (info.size !== this.partial.size || (info.state === 'partial' && info.pieceSize !== this.partial.pieceSize)) {
          // Its bitfields would name other pieces: not a source for this value.
          this.drop(link.id, false)
          return
        } else if (info.state === 'complete') {
          link.complete = true
          this.sched.updatePeer(link.id, { complete: true })
        } else {
          this.sched.updatePeer(link.id, { complete: false, have: info.have, fetching: info.fetching })
        }
        this.wake()
        failures = 0
      } catch {
        if (this.finished || !ctx.channel.open) return
        // A refusal or a timeout may pass (a peer reconnecting to its Global refuses meanwhile):
        // only a peer that keeps failing is dropped.
        if (++failures >= HAVE_FAILURES) { this.drop(link.id, false); return }
      }
      await new Promise(resolve => setTimeout(resolve, HAVE_POLL_MS))
    }
  }

  /** A peer's channel closed, or its dial failed: its pieces go elsewhere. */
  private lost (id: string): void {
    if (this.finished) return
    this.drop(id, false)
  }

  /** Drops `id` for this value (and reports it to Global when it sent bad bytes). */
  private drop (id: string, bad: boolean): void {
    if (this.sched.isDropped(id)) return
    for (const r of this.sched.dropPeer(id)) this.cancel(r)
    this.ctx.counters.peersDropped++
    this.peers.get(id)?.channel?.abort(new Error('dropped as a source'))
    if (bad) {
      this.ctx.counters.badRanges++
      this.spawn(callGlobal(this.ctx.global, { signal: this.options.signal, key: this.digest }, async g => { await reportBadPeer(g, this.digest, id) }))
    }
    this.wake()
  }

  // ---- requests ------------------------------------------------------------------------------

  private startTask (req: PieceRequest): void {
    const direct = !this.touched.has(req.piece)
    this.touched.add(req.piece)
    const task: Task = { req, controller: new AbortController(), done: Promise.resolve() }
    this.tasks.set(req.id, task)
    // Told to peers in HAVE answers: they wait for this piece rather than ask Global for it.
    this.running.set(req.piece, (this.running.get(req.piece) ?? 0) + 1)
    if (!this.partial.have.get(req.piece)) this.partial.fetching.set(req.piece)
    task.done = this.runTask(task, direct).finally(() => {
      this.tasks.delete(req.id)
      if (direct && this.writers.get(req.piece) === task) this.writers.delete(req.piece)
      const left = (this.running.get(req.piece) ?? 1) - 1
      if (left > 0) this.running.set(req.piece, left)
      else { this.running.delete(req.piece); this.partial.fetching.clear(req.piece) }
      this.wake()
    })
    if (direct) this.writers.set(req.piece, task)
  }

  /** Aborts a request the scheduler no longer counts in flight. */
  private cancel (req: PieceRequest): void {
    this.tasks.get(req.id)?.controller.abort(new Error('request cancelled'))
  }

  private handleStalls (): void {
    for (const r of this.sched.stalled()) {
      // Global is the last resort: asking it again would only start over (and a capped Global,
      // `maxEgress`, may well pause a transfer); its own timeouts end a transfer that is dead.
      if (r.source === GLOBAL) continue
      this.cancel(r)
      for (const other of this.sched.fail(r, 'stalled')) this.cancel(other)
      if (r.source !== GLOBAL && this.sched.isDropped(r.source)) this.dropped(r.source)
    }
    if (this.sched.globalFailures > MAX_GLOBAL_FAILURES) this.failure ??= new TimeoutError(`Global failed ${this.sched.globalFailures} requests for pieces of ${this.key.toString()}`)
  }

  /** The scheduler dropped `id` after too many failures: count it, close its channel. */
  private dropped (id: string): void {
    this.ctx.counters.peersDropped++
    this.peers.get(id)?.channel?.abort(new Error('dropped as a source'))
  }

  private async runTask (task: Task, direct: boolean): Promise<void> {
    const { req, controller } = task
    const { offset, length } = pieceRange(this.partial.size, req.piece)
    const linked = linkSignals(this.options.signal, controller.signal)
    const signal = linked.signal
    const partial = this.partial
    const fromPeer = req.source !== GLOBAL
    try {
      const link = this.peers.get(req.source)
      const ctx = fromPeer ? (link === undefined ? undefined : await raceAbort(link.ready, signal)) : await this.ctx.global.context(signal, this.digest)
      if (ctx === undefined) throw new Error(`no link to ${req.source}`)
      const own = direct ? undefined : new Uint8Array(length)
      let pos = 0
      const parts = getRange(ctx, this.digest, { offset, length }, {
        signal,
        onParent: (index: number, node: Uint8Array) => { partial.onParent(index, node) },
        target: (announced: number) => {
          if (announced !== partial.size) throw new ProtocolError(`the source announced ${announced} bytes for a value of ${partial.size}`)
          return direct ? partial.data : undefined
        }
      })
      for await (const part of parts) {
        if (pos + part.length > length) throw new ProtocolError('a source sent more than the piece')
        if (own !== undefined) {
          own.set(part, pos)
        } else {
          const at = offset + pos
          // The decoder wrote it in place unless it could not use the target.
          if (!(part.buffer === partial.data.buffer && part.byteOffset === partial.data.byteOffset + at)) partial.data.set(part, at)
          partial.verified(at, part.length)
        }
        pos += part.length
        this.count(req.source, part.length)
        this.sched.progress(req)
      }
      if (pos !== length) throw new ProtocolError(`a source sent ${pos} bytes of a piece of ${length}`)
      if (signal.aborted) return
      if (own !== undefined) {
        // The piece's first writer may still be running: it must stop writing into `data`
        // (it also writes bytes not verified yet) before the verified copy goes in.
        const first = this.writers.get(req.piece)
        if (first !== undefined && first !== task) {
          first.controller.abort(new Error('another source delivered the piece'))
          await first.done
        }
        // The first writer may have finished the piece meanwhile: this one was cancelled then.
        if (signal.aborted || this.finished) return
        partial.fill(req.piece, own)
      }
      for (const l of this.sched.finish(req)) this.cancel(l)
      if (fromPeer) this.rememberPeer(req.source)
      this.options.onPiece?.()
    } catch (err) {
      if (signal.aborted || this.finished) return
      this.failed(req, err)
    } finally {
      linked.clear()
    }
  }

  /** A request failed with `err` (not cancelled by us). */
  private failed (req: PieceRequest, err: unknown): void {
    if (req.source === GLOBAL) {
      if (err instanceof NotFoundError) { this.failure ??= err; this.wake(); return }
      // A lost or reset channel (Global restarting, its watchdog cutting a transfer on a slow
      // link) is no failure of Global's: the piece is asked again, as callGlobal retries any
      // call. A Global gone for good ends the download at IDLE_MS.
      if (isChannelFailure(err)) { this.sched.fail(req, 'stalled'); return }
      this.sched.fail(req, 'error')
      if (this.sched.globalFailures > MAX_GLOBAL_FAILURES) this.failure ??= err instanceof Error ? err : new Error(String(err))
      return
    }
    if (err instanceof StreamVerificationError && err.reason === 'mismatch') {
      // Bad bytes: the scheduler takes the request back with the peer.
      this.drop(req.source, true)
      return
    }
    for (const other of this.sched.fail(req, err instanceof NotFoundError ? 'notfound' : 'error')) this.cancel(other)
    if (this.sched.isDropped(req.source)) this.dropped(req.source)
  }

  private count (source: string, n: number): void {
    this.lastVerified = Date.now()
    if (source === GLOBAL) this.ctx.counters.bytesFromGlobal += n
    else this.ctx.counters.bytesFromPeers += n
  }

  private rememberPeer (id: string): void {
    const used = this.ctx.counters.peersUsed
    if (used.size < MAX_PEERS_REMEMBERED) used.add(id)
  }
}
