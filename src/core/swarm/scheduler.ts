/**
 * Which piece of a value to fetch next, and from which source: the pure decision core of a
 * multi-source download (no libp2p, no I/O; time and randomness are injected so tests can
 * drive it). The driver (src/peers/local/swarm-fetch.ts) calls {@link PieceScheduler.next}
 * until it returns nothing, runs each request, and reports back with `progress`, `finish`,
 * `fail` and `dropPeer`.
 *
 * Policy, in the order `next` applies it:
 * 1. A missing piece no request is fetching, that some peer has: from the least loaded peer
 *    that has it (each peer at most `perPeer` requests at once), rarest piece first, ties
 *    broken at random, so concurrent downloaders spread over pieces and peers.
 * 2. A missing piece no peer has and no peer is (making progress) fetching: from Global, the
 *    source ranked last, at most `perGlobal` at once. A piece only "fetching" at peers waits
 *    for them, unless none of them has grown what it holds for `waitMs` (stalled, or a peer
 *    that never answered HAVE): then Global.
 * 3. Endgame: once every missing piece is in flight, the slowest lone requests are duplicated
 *    at another peer that has the piece (at Global only once the request has stalled for three
 *    `stallMs` periods). The
 *    first copy to finish wins; `finish` returns the others, for the driver to cancel.
 *
 * A peer that failed a piece (an error, a stall, "not found") is not asked for that piece
 * again; `maxFailures` errors, or bad bytes (`dropPeer`), drop it for the whole value. A stall or
 * "not found" never counts against it: slowness is no fault.
 */

/**
 * How long a piece waits for peers fetching it that stopped growing, by default: 10 s, not 3: a
 * fetcher on a busy host pauses for seconds, and Global is the last resort.
 */
export const DEFAULT_WAIT_MS = 10_000

/** Source id of Global (peers are named by their PeerId string). */
export const GLOBAL = 'global'

/** What the scheduler needs of a bitfield (src/core/swarm/pieces.ts `Bitfield` fits). */
export interface PieceSet {
  get: (i: number) => boolean
  count: () => number
}

/** One piece asked of one source. */
export interface PieceRequest {
  readonly id: number
  readonly piece: number
  readonly source: string
  /** A second request for a piece already in flight (endgame). */
  readonly duplicate: boolean
  readonly started: number
  /** When bytes of it last arrived (or it started). */
  lastProgress: number
}

export interface SchedulerOptions {
  /** Pieces of the value. */
  pieces: number
  /** Requests at once per peer (default 2). */
  perPeer?: number
  /** Requests at once at Global (default 4). */
  perGlobal?: number
  /** A request with no bytes for this long while others progress is stalled (default 5000 ms). */
  stallMs?: number
  /** How long a piece waits for peers that are fetching it without growing (default 10 000 ms). */
  waitMs?: number
  /** Failed pieces after which a peer is dropped for this value (default 3). */
  maxFailures?: number
  now?: () => number
  random?: () => number
}

/** Why a request failed, as the driver saw it. */
export type FailReason = 'notfound' | 'error' | 'stalled'

interface Source {
  readonly id: string
  complete: boolean
  have: PieceSet | undefined
  fetching: PieceSet | undefined
  haveCount: number
  /** When it last showed a new piece (or was added): a fetcher not growing is stalled. */
  lastGrowth: number
  inflight: number
  failures: number
  dropped: boolean
  /** Pieces it failed or lacks: not asked of it again. */
  readonly excluded: Set<number>
}

export class PieceScheduler {
  readonly pieces: number
  private readonly perPeer: number
  private readonly perGlobal: number
  private readonly stallMs: number
  private readonly waitMs: number
  private readonly maxFailures: number
  private readonly now: () => number
  private readonly random: () => number
  private readonly held: Uint8Array
  private heldCount = 0
  private readonly peers = new Map<string, Source>()
  private readonly global: Source
  /** Requests in flight per piece. */
  private readonly requests = new Map<number, PieceRequest[]>()
  private nextId = 1
  /** When any request last progressed (a stall is judged against the others). */
  private lastAnyProgress: number
  /** Requests of Global that failed (the driver bounds them). */
  globalFailures = 0

  constructor (options: SchedulerOptions) {
    if (!Number.isSafeInteger(options.pieces) || options.pieces < 0) throw new RangeError(`invalid piece count ${options.pieces}`)
    this.pieces = options.pieces
    this.perPeer = options.perPeer ?? 2
    this.perGlobal = options.perGlobal ?? 4
    this.stallMs = options.stallMs ?? 5000
    this.waitMs = options.waitMs ?? DEFAULT_WAIT_MS
    this.maxFailures = options.maxFailures ?? 3
    this.now = options.now ?? Date.now
    this.random = options.random ?? Math.random
    this.held = new Uint8Array(this.pieces)
    this.global = newSource(GLOBAL, true, this.now())
    this.lastAnyProgress = this.now()
  }

  /** Whether every piece is held. */
  done (): boolean { return this.heldCount === this.pieces }

  /** Whether piece `i` is held. */
  isHeld (i: number): boolean { return this.held[i] === 1 }

  /** Pieces held. */
  get heldPieces (): number { return this.heldCount }

  /** Requests in flight (duplicates included). */
  get inFlight (): number {
    let n = 0
    for (const list of this.requests.values()) n += list.length
    return n
  }

  /** Peers not dropped. */
  livePeers (): string[] { return [...this.peers.values()].filter(p => !p.dropped).map(p => p.id) }

  /** Whether `id` was dropped for this value. */
  isDropped (id: string): boolean { return this.peers.get(id)?.dropped === true }

  /** Whether `id` is known (live or dropped). */
  knows (id: string): boolean { return this.peers.has(id) }

  /** Marks a piece held without a request (it arrived another way, e.g. already verified). */
  markHeld (i: number): void {
    if (this.held[i] === 1) return
    this.held[i] = 1
    this.heldCount++
  }

  /**
   * A new source. A peer listed as complete has every piece; any other is taken to be
   * fetching every piece until its HAVE answer says more. A peer once dropped stays dropped.
   */
  addPeer (id: string, complete: boolean): void {
    if (id === GLOBAL) throw new RangeError('Global is always a source')
    const p = this.peers.get(id)
    if (p !== undefined) { if (complete && !p.dropped) this.setComplete(p); return }
    this.peers.set(id, newSource(id, complete, this.now()))
  }

  /** A peer's HAVE answer: complete, or what it holds and what it is fetching. */
  updatePeer (id: string, info: { complete: boolean, have?: PieceSet, fetching?: PieceSet }): void {
    const p = this.peers.get(id)
    if (p === undefined || p.dropped) return
    if (info.complete) { this.setComplete(p); return }
    p.complete = false
    const count = info.have?.count() ?? 0
    if (count > p.haveCount || p.have === undefined) p.lastGrowth = this.now()
    p.haveCount = count
    p.have = info.have
    p.fetching = info.fetching
  }

  /**
   * Drops a peer for this value (bad bytes, vanished, or no longer listed). Its requests in
   * flight are returned, for the driver to abort; their pieces are missing again.
   */
  dropPeer (id: string): PieceRequest[] {
    const p = this.peers.get(id)
    if (p === undefined || p.dropped) return []
    p.dropped = true
    const out: PieceRequest[] = []
    for (const list of this.requests.values()) for (const r of list) if (r.source === id) out.push(r)
    for (const r of out) this.remove(r)
    return out
  }

  /** Bytes of `req` arrived. */
  progress (req: PieceRequest): void {
    const t = this.now()
    req.lastProgress = t
    this.lastAnyProgress = t
  }

  /**
   * `req` delivered its whole piece, verified: the piece is held. Returns the other requests
   * for that piece (endgame duplicates), for the driver to cancel.
   */
  finish (req: PieceRequest): PieceRequest[] {
    this.progress(req)
    const list = this.requests.get(req.piece) ?? []
    for (const r of list) this.sourceOf(r.source).inflight--
    this.requests.delete(req.piece)
    this.markHeld(req.piece)
    return list.filter(r => r !== req)
  }

  /**
   * `req` failed. The piece is missing again (unless another request still fetches it) and its
   * source is not asked for it again. Returns requests to abort: those of a peer dropped now
   * for failing too often.
   */
  fail (req: PieceRequest, reason: FailReason): PieceRequest[] {
    if (!this.remove(req)) return []
    if (req.source === GLOBAL) { if (reason === 'error') this.globalFailures++; return [] }
    const p = this.peers.get(req.source)
    if (p === undefined || p.dropped) return []
    p.excluded.add(req.piece)
    // Lacking a piece is no fault; nor is being slow: a peer whose uplink many Locals share (a
    // flash crowd) sends each of its requests in turn, and dropping it for that sends its
    // pieces to Global (bench/swarm.ts at N=16 dropped 150 peers so). Only errors count.
    if (reason === 'notfound' || reason === 'stalled') return []
    p.failures++
    return p.failures >= this.maxFailures ? this.dropPeer(p.id) : []
  }

  /**
   * Requests without bytes for `stallMs` while other requests progressed since, or for four
   * times that whatever the others do (a vanished peer whose connection lingers).
   */
  stalled (): PieceRequest[] {
    const t = this.now()
    const out: PieceRequest[] = []
    for (const list of this.requests.values()) {
      for (const r of list) {
        const idle = t - r.lastProgress
        if ((idle >= this.stallMs && this.lastAnyProgress > r.lastProgress) || idle >= 4 * this.stallMs) out.push(r)
      }
    }
    return out
  }

  /** The next request to start, marked in flight; undefined when nothing should start now. */
  next (): PieceRequest | undefined {
    if (this.done()) return undefined
    const open: number[] = []
    for (let i = 0; i < this.pieces; i++) if (this.held[i] === 0 && !this.requests.has(i)) open.push(i)
    return this.fromPeers(open) ?? this.fromGlobal(open) ?? (open.length === 0 ? this.endgame() : undefined)
  }

  /** Rule 1: the rarest open piece some peer with a free slot has, from its least loaded holder. */
  private fromPeers (open: number[]): PieceRequest | undefined {
    let best: number[] = []
    let bestRarity = Infinity
    for (const i of open) {
      let holders = 0
      let free = false
      for (const p of this.peers.values()) {
        if (!this.has(p, i)) continue
        holders++
        if (p.inflight < this.perPeer) free = true
      }
      if (!free) continue
      if (holders < bestRarity) { bestRarity = holders; best = [i] } else if (holders === bestRarity) best.push(i)
    }
    if (best.length === 0) return undefined
    const piece = this.pick(best)
    const source = this.leastLoaded(piece, undefined)
    return source === undefined ? undefined : this.start(piece, source, false)
  }

  /** Rule 2: an open piece no peer has nor is fetching (with progress), from Global. */
  private fromGlobal (open: number[]): PieceRequest | undefined {
    if (this.global.inflight >= this.perGlobal) return undefined
    const t = this.now()
    const orphans = open.filter(i => {
      for (const p of this.peers.values()) {
        if (this.has(p, i)) return false
        if (this.mayGet(p, i) && t - p.lastGrowth < this.waitMs) return false
      }
      return true
    })
    if (orphans.length === 0) return undefined
    return this.start(this.pick(orphans), this.global, false)
  }

  /** Rule 3: duplicate the lone request that progressed least recently, elsewhere. */
  private endgame (): PieceRequest | undefined {
    const t = this.now()
    const lone = [...this.requests.values()].filter(l => l.length === 1).map(l => l[0]).sort((a, b) => a.lastProgress - b.lastProgress)
    for (const r of lone) {
      const peer = this.leastLoaded(r.piece, r.source)
      if (peer !== undefined) return this.start(r.piece, peer, true)
      // At Global only after three stall periods: on busy hosts peers pause for seconds, and
      // each early duplicate at Global is egress the swarm exists to save (bench/swarm.ts at
      // N=16: 2.3-3.1x the value with one period, 1.1x with three).
      if (r.source !== GLOBAL && t - r.lastProgress >= 3 * this.stallMs && this.global.inflight < this.perGlobal) return this.start(r.piece, this.global, true)
    }
    return undefined
  }

  private has (p: Source, i: number): boolean {
    return !p.dropped && !p.excluded.has(i) && (p.complete || p.have?.get(i) === true)
  }

  /** Whether `p` may come to have piece `i`: it is fetching it, or has not said (no HAVE yet). */
  private mayGet (p: Source, i: number): boolean {
    if (p.dropped || p.excluded.has(i)) return false
    return p.have === undefined || p.fetching?.get(i) === true
  }

  /** The least loaded peer with a free slot that has `piece`, other than `not` (random tie break). */
  private leastLoaded (piece: number, not: string | undefined): Source | undefined {
    let best: Source[] = []
    for (const p of this.peers.values()) {
      if (p.id === not || p.inflight >= this.perPeer || !this.has(p, piece)) continue
      if (best.length === 0 || p.inflight < best[0].inflight) best = [p]
      else if (p.inflight === best[0].inflight) best.push(p)
    }
    return best.length === 0 ? undefined : this.pick(best)
  }

  private start (piece: number, source: Source, duplicate: boolean): PieceRequest {
    const t = this.now()
    const req: PieceRequest = { id: this.nextId++, piece, source: source.id, duplicate, started: t, lastProgress: t }
    source.inflight++
    const list = this.requests.get(piece)
    if (list === undefined) this.requests.set(piece, [req])
    else list.push(req)
    return req
  }

  /** Takes `req` out of flight; false if it was not in flight (finished, or already removed). */
  private remove (req: PieceRequest): boolean {
    const list = this.requests.get(req.piece)
    const at = list?.indexOf(req) ?? -1
    if (list === undefined || at < 0) return false
    list.splice(at, 1)
    if (list.length === 0) this.requests.delete(req.piece)
    this.sourceOf(req.source).inflight--
    return true
  }

  private setComplete (p: Source): void {
    if (!p.complete) p.lastGrowth = this.now()
    p.complete = true
  }

  private sourceOf (id: string): Source {
    if (id === GLOBAL) return this.global
    const p = this.peers.get(id)
    if (p === undefined) throw new RangeError(`unknown source ${id}`)
    return p
  }

  private pick<T> (items: T[]): T {
    return items[Math.min(items.length - 1, Math.floor(this.random() * items.length))]
  }
}

function newSource (id: string, complete: boolean, now: number): Source {
  return { id, complete, have: undefined, fetching: undefined, haveCount: 0, lastGrowth: now, inflight: 0, failures: 0, dropped: false, excluded: new Set() }
}
