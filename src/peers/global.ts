/**
 * The Global peer: pins and serves the canonical copies from a filesystem store in its
 * repository folder, and keeps every connected Local's cache coherent with deletes.
 *
 * Repository layout: `global.key` (identity, 0600), `store/` (the filesystem store, see
 * docs/STORAGE.md), `global.addr` (dialable multiaddrs, one per line, rewritten at each start).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Stream, Connection } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { cidFromDigest, parseCID, type CIDLike } from '../core/cid.js'
import type { ByteRange } from '../core/bao/index.js'
import { ClosedError, ConfigError, PartialDeleteError, ProtocolError } from '../core/errors.js'
import { createFsStore } from '../core/store/fs.js'
import type { AbortOptions, BlobStat, ByteSource, GetOptions, GlobalStore, PutOptions } from '../core/store/interface.js'
import { BLOB_PROTOCOL, EVICT_TIMEOUT_MS, KIND, MAX_BLOB_STREAMS, MAX_CONNECTIONS_PER_PEER, MAX_RPC_STREAMS, RPC_PROTOCOL } from '../protocol/constants.js'
import { decodeEvict, encodeEvictResponse, evictBody, type MessageReader } from '../protocol/messages.js'
import { createProviderHandler, handleBlobStream, type ProviderOptions } from '../protocol/provider.js'
import { RpcChannel } from '../protocol/rpc.js'
import { AccessControl, type AccessLists } from './access.js'
import { parsePeerGlobals, PeerGlobals } from './peer-globals.js'
import { RecheckBudget } from './recheck-budget.js'
import { loadOrCreateIdentity } from './identity.js'
import { createNode, type DstoreNode, type Encryption } from './node.js'
import type { ConnectionLimits } from './conn-limits.js'
import { Traffic, type TrafficSnapshot } from './traffic.js'
import { checkMaxEgress, GlobalSwarm, type GlobalSwarmStats } from './global-swarm.js'
import type { Registry } from 'prom-client'

export interface GlobalOptions {
  /** Repository folder: identity, store and `global.addr` live here. Created if missing. */
  repo: string
  /** Multiaddrs to listen on; default `/ip4/127.0.0.1/tcp/0` (loopback, any free port). */
  listen?: string[]
  /** Encrypters offered to dialers; default TLS 1.3 and noise. */
  encryption?: Encryption[]
  /** Largest value accepted; default no limit. */
  maxBlobSize?: number
  /** Time a request or transfer may go without progress; default 30 s. */
  requestTimeout?: number
  /** Time Locals get to confirm an eviction before their connection is reset; default 5 s. */
  evictTimeout?: number
  /** fsync every put (default true). Turning it off trades durability for speed. (The fs store only.) */
  sync?: boolean
  /**
   * Where the canonical copies live. Default: the filesystem store in `<repo>/store`. Any
   * {@link GlobalStore}, such as an S3 store, which several Globals may share; the Global
   * closes it when it stops. The repository still holds this Global's identity, access lists
   * and address files.
   */
  store?: GlobalStore
  /**
   * PeerIds allowed to write (PUT, DELETE), added to those in `<repo>/allow-writers`. With
   * neither, writes are open only when every listen address is loopback; otherwise Global
   * refuses to start (ConfigError) unless `insecureOpenWrites` is set. See docs/SECURITY.md.
   */
  allowWriters?: string[]
  /** PeerIds allowed to read, added to those in `<repo>/allow-readers`. With neither, anyone may read. Writers may always read. */
  allowReaders?: string[]
  /**
   * The other Globals serving the same store (multiaddrs with `/p2p/` ids; list each Global in
   * every other's list). A delete through this Global is passed on to each, which makes its own
   * Locals evict the value before answering; one that does not answer within twice `evictTimeout`
   * (its own Locals get `evictTimeout`) is reported by a PartialDeleteError (the value is deleted all the same). Only these PeerIds
   * may send this Global an eviction. See docs/ARCHITECTURE.md, "Several Globals".
   */
  peerGlobals?: string[]
  /** Accept writes from anyone on a non-loopback address without a writer list. */
  insecureOpenWrites?: boolean
  /** Connections one PeerId may have open at once; default {@link MAX_CONNECTIONS_PER_PEER} (32). */
  maxConnectionsPerPeer?: number
  /** Handshake deadline and caps on connections still in their handshake; see docs/SECURITY.md. */
  connectionLimits?: Partial<ConnectionLimits>
  /** Receives one line per notable event (protocol violations, evictions that timed out, the first refusal of each peer). */
  log?: (line: string) => void
  /** A prom-client registry to collect libp2p's metrics (`libp2p_*`) into (src/http/metrics.ts). None by default. */
  metricsRegistry?: Registry
  /**
   * Caps the value bytes this Global sends to all peers together, in bytes per second (a token
   * bucket: a burst of 1/10 s, then this rate; transfers take turns 64 KiB at a time). At least
   * 64 KiB/s (`MIN_EGRESS`). Default: no cap.
   */
  maxEgress?: number
}

/** A Local connected now (its rpc channel is open). */
export interface ConnectedLocal {
  peerId: string
  /** The address it connected from. */
  addr: string
  /** When its channel opened, ms since the epoch. */
  since: number
}

export interface GlobalStats {
  /** Locals connected now (rpc channels open). */
  locals: number
  bytesIn: number
  bytesOut: number
  /** Evictions sent to Locals and confirmed. */
  evictionsConfirmed: number
  /** Locals reset because they did not confirm an eviction in time. */
  evictionsTimedOut: number
  /** Values re-checked on disk because a Local reset a GET of them, and those found corrupt. */
  rechecks: number
  rechecksFailed: number
  /** Re-checks queued or running now. */
  rechecksPending: number
  /** The swarm tracker and the egress cap (issue #12). */
  swarm: GlobalSwarmStats
}

export type { GlobalSwarmStats }

interface LocalLink { channel: RpcChannel, connection: Connection, since: number }

/** Values waiting to be re-checked after aborted GETs; more are not queued. */
const MAX_RECHECKS = 16
/** Corrupt values remembered so each is logged once. */
const MAX_KNOWN_BAD = 1024

/** A running Global peer. Create it with {@link createGlobal}. */
export class GlobalPeer {
  private readonly links = new Set<LocalLink>()
  /** The tracker (which Locals hold or fetch which large values) and the egress cap. */
  readonly swarm: GlobalSwarm
  /** Channels peer Globals opened to this one, to relay evictions (not Locals: never sent EVICTs). */
  private readonly peerLinks = new Set<RpcChannel>()
  private peerGlobals!: PeerGlobals
  private readonly counters = { bytesIn: 0, bytesOut: 0, evictionsConfirmed: 0, evictionsTimedOut: 0, rechecks: 0, rechecksFailed: 0 }
  private stopped = false
  /** Value bytes by source, verification failures, recent transfers (status, metrics). */
  private readonly moved = new Traffic()
  /** When this Global started (ms since the epoch). */
  readonly startedAt = Date.now()
  /** Values to re-check after an aborted GET (see `recheck`), by hex digest. */
  private readonly rechecks = new Map<string, { digest: Uint8Array, covered: ByteRange }>()
  private readonly recheckBudget = new RecheckBudget()
  private rechecking: Promise<void> | undefined
  /** Values found corrupt by a re-check (hex digests), not re-checked or logged again. */
  private readonly knownBad = new Set<string>()
  private readonly recheckAbort = new AbortController()

  private constructor (
    readonly node: DstoreNode,
    readonly store: GlobalStore,
    readonly repo: string,
    private readonly access: AccessControl,
    private readonly options: GlobalOptions
  ) {
    this.swarm = new GlobalSwarm(options.maxEgress, (peerId) => this.access.allows(peerId, 'read'))
  }

  /** @internal use {@link createGlobal}. */
  static async create (options: GlobalOptions): Promise<GlobalPeer> {
    await mkdir(options.repo, { recursive: true })
    const listen = options.listen ?? ['/ip4/127.0.0.1/tcp/0']
    const maxConnections = options.maxConnectionsPerPeer
    const peerGlobals = parsePeerGlobals(options.peerGlobals ?? [])
    if (maxConnections !== undefined && (!Number.isSafeInteger(maxConnections) || maxConnections < 1)) {
      throw new ConfigError(`maxConnectionsPerPeer must be a whole number of at least 1, not ${String(maxConnections)}`)
    }
    checkMaxEgress(options.maxEgress)
    // Before anything is opened: an unsafe or unreadable configuration starts nothing.
    const access = await AccessControl.load({
      repo: options.repo,
      listen,
      allowWriters: options.allowWriters,
      allowReaders: options.allowReaders,
      insecureOpenWrites: options.insecureOpenWrites,
      log: options.log
    })
    const privateKey = await loadOrCreateIdentity(options.repo, 'global.key')
    // Recovery at open (a lost index is rebuilt from the data files) says what it did in Global's log.
    const store = options.store ?? await createFsStore({ path: join(options.repo, 'store'), sync: options.sync ?? true, log: options.log })
    let node: DstoreNode
    try {
      node = await createNode({ privateKey, listen, encryption: options.encryption, limits: options.connectionLimits, metricsRegistry: options.metricsRegistry })
    } catch (err) {
      await store.close()
      throw err
    }
    const peer = new GlobalPeer(node, store, options.repo, access, options)
    // A peer Global gives its own Locals evictTimeout, so it gets twice that to answer (dial included).
    peer.peerGlobals = new PeerGlobals(node, peerGlobals, 2 * (options.evictTimeout ?? EVICT_TIMEOUT_MS))
    try {
      await peer.start()
    } catch (err) {
      await node.stop()
      await store.close()
      throw err
    }
    return peer
  }

  private async start (): Promise<void> {
    const provider: ProviderOptions = {
      store: this.store,
      onDelete: async (digest) => { await this.evictEverywhere(digest) },
      maxBlobSize: this.options.maxBlobSize,
      requestTimeout: this.options.requestTimeout,
      egress: this.swarm.egress,
      onBytes: (dir, n) => { if (dir === 'in') this.counters.bytesIn += n; else this.counters.bytesOut += n },
      onTransfer: (t) => {
        if (t.error !== undefined) this.moved.failedWith(t.error)
        // The inline start of a larger GET: its bytes count, the blob stream's GET is the transfer.
        if (t.partial === true) { this.moved.served('local', t.bytes); return }
        this.moved.record(t.digest.length === 0 ? '' : cidFromDigest(t.digest).toString(), t.op, 'local', t.bytes, t.started, t.error === undefined)
      }
    }
    // The peer checked is the connection's remote peer: the identity its handshake proved.
    const forPeer = (connection: Connection): ProviderOptions => {
      const peer = connection.remotePeer.toString()
      return {
        ...provider,
        // A peer's reports (and the GETs it resets) are re-checked within its budget only.
        onGetAborted: (digest, covered) => { if (this.recheckBudget.take(peer)) this.recheck(digest, covered) },
        onReport: (digest, covered) => { if (this.recheckBudget.take(peer)) this.recheck(digest, covered) },
        authorize: (access) => { this.access.check(peer, access) },
        onProtocolError: (err) => { this.violation(peer, err.message) },
        swarm: this.swarm.hooks(peer)
      }
    }
    // A peer gets at most maxConnectionsPerPeer connections (a Local needs one): the newest
    // go, so a peer cannot multiply its stream limits. Logged at most once a minute per peer.
    const refusedAt = new Map<string, number>()
    const maxConnections = this.options.maxConnectionsPerPeer ?? MAX_CONNECTIONS_PER_PEER
    this.node.addEventListener('connection:open', (evt) => {
      const connection = evt.detail
      if (this.node.getConnections(connection.remotePeer).length <= maxConnections) return
      const peer = connection.remotePeer.toString()
      connection.abort(new ProtocolError(`more than ${maxConnections} connections from one peer`))
      const now = Date.now()
      if (now - (refusedAt.get(peer) ?? 0) < 60_000) return
      if (refusedAt.size > 1000) refusedAt.clear()
      refusedAt.set(peer, now)
      this.violation(peer, `more than ${maxConnections} connections at once; closing the extra ones`)
    })
    await this.node.handle(RPC_PROTOCOL, (stream: Stream, connection: Connection) => {
      if (this.peerGlobals.has(connection.remotePeer.toString())) {
        const channel: RpcChannel = new RpcChannel(stream, this.answerPeerGlobal, {
          requestTimeout: this.options.requestTimeout,
          onClose: () => { this.peerLinks.delete(channel) },
          onProtocolError: (err) => { this.violation(connection.remotePeer.toString(), err.message) }
        })
        this.peerLinks.add(channel)
        return
      }
      const peer = connection.remotePeer.toString()
      this.swarm.opened(peer)
      const link: LocalLink = {
        connection,
        since: Date.now(),
        channel: new RpcChannel(stream, createProviderHandler(forPeer(connection)), {
          requestTimeout: this.options.requestTimeout,
          onClose: () => { this.links.delete(link); this.swarm.closed(peer) },
          onProtocolError: (err) => { this.violation(connection.remotePeer.toString(), err.message) }
        })
      }
      this.links.add(link)
    }, { maxInboundStreams: MAX_RPC_STREAMS, maxOutboundStreams: MAX_RPC_STREAMS })
    await this.node.handle(BLOB_PROTOCOL, (stream: Stream, connection: Connection) => {
      void handleBlobStream(stream, forPeer(connection))
    }, { maxInboundStreams: MAX_BLOB_STREAMS, maxOutboundStreams: MAX_BLOB_STREAMS })
    await this.writeAddrFile()
  }

  /** This peer's PeerId, as a string. */
  get peerId (): string { return this.node.peerId.toString() }

  /** Dialable multiaddrs, each ending in `/p2p/<peerId>`. */
  get multiaddrs (): string[] { return this.node.getMultiaddrs().map(ma => ma.toString()) }

  /** Path of the file holding the dialable multiaddrs. */
  get addrFile (): string { return join(this.repo, 'global.addr') }

  /**
   * Re-reads `<repo>/allow-writers` and `<repo>/allow-readers` (the CLI does this on SIGHUP).
   * Rejects with a ConfigError, keeping the lists in force, if a file does not parse.
   */
  async reloadAccess (): Promise<AccessLists> { return await this.access.reload() }

  /** The allow-lists in force (`undefined`: not restricted). */
  get accessLists (): AccessLists { return this.access.current }

  /** Stores a value directly (verified like any put). */
  async put (source: ByteSource, options?: PutOptions): Promise<CID> {
    const started = Date.now()
    let cid: CID
    try {
      cid = await this.store.put(source, options)
    } catch (err) {
      this.moved.failedWith(err)
      throw err
    }
    this.moved.record(cid.toString(), 'put', 'api', (await this.store.stat(cid)).size, started)
    return cid
  }

  /** Streams a value (or a range) from the store. */
  async * cat (cid: CIDLike, options?: GetOptions): AsyncGenerator<Uint8Array> {
    const started = Date.now()
    let done = 0
    let ok = false
    try {
      for await (const part of this.store.cat(cid, options)) { done += part.length; yield part }
      ok = true
    } finally {
      this.moved.record(parseCID(cid).toString(), 'get', 'api', done, started, ok)
    }
  }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> { return await this.store.has(cid, options) }
  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> { return await this.store.stat(cid, options) }
  list (options?: AbortOptions): AsyncIterable<BlobStat> { return this.store.list(options) }

  /**
   * Deletes a value and evicts it from every connected Local (and, through each peer Global,
   * from its Locals) before resolving.
   * @throws {PartialDeleteError} when deleted, but a peer Global did not answer.
   */
  async delete (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    const key = parseCID(cid)
    const existed = await this.store.delete(key, options)
    await this.evictEverywhere(key.multihash.digest)
    return existed
  }

  /** Value bytes received and served by source, verification failures, and the recent transfers. */
  traffic (): TrafficSnapshot {
    return this.moved.snapshot()
  }

  /** The Locals connected now. */
  connectedLocals (): ConnectedLocal[] {
    return [...this.links].map(link => ({
      peerId: link.connection.remotePeer.toString(),
      addr: link.connection.remoteAddr.toString(),
      since: link.since
    }))
  }

  /** Values stored and the sum of their sizes (kept by the store's index; no scan). */
  storeUsage (): { values: number, bytes: number } {
    return this.store.usage()
  }

  stats (): GlobalStats {
    return {
      locals: this.links.size,
      ...this.counters,
      rechecksPending: this.rechecks.size,
      swarm: this.swarm.stats()
    }
  }

  /** Stops serving, closes the store. Locals will try to reconnect. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const link of this.links) link.channel.abort(new ClosedError('Global is stopping'))
    for (const channel of this.peerLinks) channel.abort(new ClosedError('Global is stopping'))
    await this.peerGlobals.close()
    // Connections reset, not closed: a Local then sees every transfer cut (and retries it), not
    // a stream ending early, which it would have to take for Global sending too little.
    for (const connection of this.node.getConnections()) connection.abort(new ClosedError('Global is stopping'))
    this.recheckAbort.abort()
    await this.node.stop()
    await this.rechecking
    await this.store.close()
  }

  /**
   * Tells every connected Local, and every peer Global, to evict `digest` and waits for each to
   * confirm. A Local that does not confirm in time has its rpc channel reset: it will reconcile
   * its cache with Global when it reconnects, so it can never keep serving a deleted value as if
   * it were current. A peer Global that does not confirm is reported (PartialDeleteError).
   */
  private async evictEverywhere (digest: Uint8Array): Promise<void> {
    const [, unanswered] = await Promise.all([this.evictLocals(digest), this.peerGlobals.relayEvict([digest])])
    if (unanswered.length === 0) return
    const cid = cidFromDigest(digest).toString()
    for (const u of unanswered) this.log(`peer Global ${u.id} did not confirm the eviction of ${cid} (${u.reason}); its Locals drop it when they reconnect or at their next re-check`)
    throw new PartialDeleteError(`${cid} is deleted, but ${unanswered.length === 1 ? 'peer Global' : 'peer Globals'} ${unanswered.map(u => u.id).join(', ')} did not confirm the eviction: ` +
      'their Locals drop it when they reconnect or at their next re-check', { unanswered: unanswered.map(u => u.id) })
  }

  /**
   * Answers a peer Global's relayed eviction: this Global's own Locals evict the values, then
   * it answers. Not passed on (every Global lists every other: no loops).
   */
  private readonly answerPeerGlobal = async (msg: MessageReader): Promise<Uint8Array> => {
    if (msg.kind !== KIND.EVICT) throw new ProtocolError(`a peer Global may only relay evictions, not send requests of kind 0x${msg.kind.toString(16)}`)
    const digests = decodeEvict(msg)
    await Promise.all(digests.map(async d => { await this.evictLocals(d) }))
    return encodeEvictResponse(msg.id)
  }

  /** {@link evictEverywhere} for this Global's own Locals. */
  private async evictLocals (digest: Uint8Array): Promise<void> {
    // First, before any EVICT goes out (also for one a peer Global relays): no GET or SOURCES
    // answered from now on points anyone at a Local that is about to evict the value.
    this.swarm.tracker.forget(digest)
    const timeout = this.options.evictTimeout ?? EVICT_TIMEOUT_MS
    // Only to peers that may read: one that may not has nothing from Global to evict, and must
    // neither learn which values are deleted nor hold up a delete by not answering.
    const readers = [...this.links].filter(link => this.access.allows(link.connection.remotePeer.toString(), 'read'))
    await Promise.all(readers.map(async (link) => {
      try {
        await link.channel.request(KIND.EVICT, evictBody([digest]), { timeout })
        this.counters.evictionsConfirmed++
      } catch (err) {
        this.counters.evictionsTimedOut++
        this.log(`Local ${link.connection.remotePeer.toString()} did not confirm an eviction (${(err as Error).message}); resetting its channel`)
        link.channel.abort(new ClosedError('eviction not confirmed'))
        this.links.delete(link)
      }
    }))
  }

  private async writeAddrFile (): Promise<void> {
    const tmp = `${this.addrFile}.tmp-${process.pid}`
    await writeFile(tmp, this.multiaddrs.join('\n') + '\n')
    await rename(tmp, this.addrFile)
  }

  /** Logs a peer's protocol violation (one format, which operators and tests grep for). */
  private violation (peer: string, what: string): void {
    this.log(`protocol error from ${peer}: ${what}`)
  }

  private log (line: string): void {
    this.options.log?.(line)
  }

  /**
   * A Local reset a GET after part of it was sent: its decoder may have rejected our bytes (a
   * value corrupted on disk), or it just stopped reading. Re-check the part that was sent
   * against the store, in the background, one at a time (at most {@link MAX_RECHECKS} waiting,
   * one per value), and log if it does not verify. The cost is bounded by what was already
   * sent. (Checking every GET as it is served would hash every byte served, doubling Global's
   * CPU per byte; values served inline on the rpc channel are not re-checked: `dstore verify`
   * finds those.)
   */
  private recheck (digest: Uint8Array, covered: ByteRange): void {
    if (this.stopped) return
    const hex = Buffer.from(digest).toString('hex')
    // One job per value and range: a REPORT of the bad range is not lost behind the re-check of
    // a reset GET's other range. The queue stays bounded by MAX_RECHECKS.
    const id = `${hex}:${covered.offset}:${covered.length}`
    if (this.rechecks.has(id) || this.rechecks.size >= MAX_RECHECKS || this.knownBad.has(hex)) return
    this.rechecks.set(id, { digest: digest.slice(), covered })
    if (this.rechecking === undefined) this.rechecking = this.drainRechecks()
  }

  private async drainRechecks (): Promise<void> {
    await Promise.resolve() // run after recheck() has returned
    // A Map iterates entries added while it runs; each is removed once checked.
    for (const [key, job] of this.rechecks) {
      if (this.stopped) break
      const cid = cidFromDigest(job.digest)
      // Another range of it was found bad meanwhile: logged once is enough.
      if (this.knownBad.has(Buffer.from(job.digest).toString('hex'))) { this.rechecks.delete(key); continue }
      try {
        const problem = await this.store.verifyRange(cid, job.covered, { signal: this.recheckAbort.signal })
        this.counters.rechecks++
        if (problem !== undefined) {
          this.counters.rechecksFailed++
          // Logged once per value (until restart), however many Locals trip over it.
          if (this.knownBad.size < MAX_KNOWN_BAD) this.knownBad.add(Buffer.from(job.digest).toString('hex'))
          // The next put of these bytes re-verifies the stored copy and replaces it.
          this.store.markSuspect(cid)
          const repair = this.store.kind === 'fs' ? '`dstore verify --repair` with Global stopped' : `\`dstore verify --store … --repair\` on this ${this.store.kind} store (Global may keep running)`
          this.log(`stored value ${cid.toString()} fails verification (${problem}); a Local rejected it. Run ${repair}`)
        }
      } catch (err) {
        if (!this.stopped) this.log(`could not re-check ${cid.toString()}: ${(err as Error).message}`)
      }
      this.rechecks.delete(key)
    }
    // No await since the loop ended: nothing was added that this loop did not see.
    this.rechecking = undefined
  }
}

/** Starts a Global peer. */
export async function createGlobal (options: GlobalOptions): Promise<GlobalPeer> {
  return await GlobalPeer.create(options)
}
