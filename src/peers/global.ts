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
import { parseCID, type CIDLike } from '../core/cid.js'
import { ClosedError } from '../core/errors.js'
import { createFsStore, type FsBlobStore } from '../core/store/fs.js'
import type { AbortOptions, BlobStat, ByteSource, GetOptions, PutOptions } from '../core/store/interface.js'
import { BLOB_PROTOCOL, EVICT_TIMEOUT_MS, KIND, MAX_BLOB_STREAMS, MAX_RPC_STREAMS, RESPONSE, RPC_PROTOCOL } from '../protocol/constants.js'
import { encodeEvict } from '../protocol/messages.js'
import { createProviderHandler, handleBlobStream, type ProviderOptions } from '../protocol/provider.js'
import { RpcChannel } from '../protocol/rpc.js'
import { loadOrCreateIdentity } from './identity.js'
import { createNode, type DstoreNode, type Encryption } from './node.js'

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
  /** fsync every put (default true). Turning it off trades durability for speed. */
  sync?: boolean
  /** Receives one line per notable event (protocol violations, evictions that timed out). */
  log?: (line: string) => void
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
}

interface LocalLink { channel: RpcChannel, connection: Connection }

/** A running Global peer. Create it with {@link createGlobal}. */
export class GlobalPeer {
  private readonly links = new Set<LocalLink>()
  private readonly counters = { bytesIn: 0, bytesOut: 0, evictionsConfirmed: 0, evictionsTimedOut: 0 }
  private stopped = false

  private constructor (readonly node: DstoreNode, readonly store: FsBlobStore, readonly repo: string, private readonly options: GlobalOptions) {}

  /** @internal use {@link createGlobal}. */
  static async create (options: GlobalOptions): Promise<GlobalPeer> {
    await mkdir(options.repo, { recursive: true })
    const privateKey = await loadOrCreateIdentity(options.repo, 'global.key')
    const store = await createFsStore({ path: join(options.repo, 'store'), sync: options.sync ?? true })
    let node: DstoreNode
    try {
      node = await createNode({ privateKey, listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'], encryption: options.encryption })
    } catch (err) {
      await store.close()
      throw err
    }
    const peer = new GlobalPeer(node, store, options.repo, options)
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
      onBytes: (dir, n) => { if (dir === 'in') this.counters.bytesIn += n; else this.counters.bytesOut += n }
    }
    const handler = createProviderHandler(provider)
    await this.node.handle(RPC_PROTOCOL, (stream: Stream, connection: Connection) => {
      const link: LocalLink = {
        connection,
        channel: new RpcChannel(stream, handler, {
          requestTimeout: this.options.requestTimeout,
          onClose: () => { this.links.delete(link) },
          onProtocolError: (err) => { this.log(`protocol error from ${connection.remotePeer.toString()}: ${err.message}`) }
        })
      }
      this.links.add(link)
    }, { maxInboundStreams: MAX_RPC_STREAMS, maxOutboundStreams: MAX_RPC_STREAMS })
    await this.node.handle(BLOB_PROTOCOL, (stream: Stream) => {
      void handleBlobStream(stream, provider)
    }, { maxInboundStreams: MAX_BLOB_STREAMS, maxOutboundStreams: MAX_BLOB_STREAMS })
    await this.writeAddrFile()
  }

  /** This peer's PeerId, as a string. */
  get peerId (): string { return this.node.peerId.toString() }

  /** Dialable multiaddrs, each ending in `/p2p/<peerId>`. */
  get multiaddrs (): string[] { return this.node.getMultiaddrs().map(ma => ma.toString()) }

  /** Path of the file holding the dialable multiaddrs. */
  get addrFile (): string { return join(this.repo, 'global.addr') }

  /** Stores a value directly (verified like any put). */
  async put (source: ByteSource, options?: PutOptions): Promise<CID> { return await this.store.put(source, options) }

  /** Streams a value (or a range) from the store. */
  cat (cid: CIDLike, options?: GetOptions): AsyncIterable<Uint8Array> { return this.store.get(cid, options) }

  async has (cid: CIDLike, options?: AbortOptions): Promise<boolean> { return await this.store.has(cid, options) }
  async stat (cid: CIDLike, options?: AbortOptions): Promise<BlobStat> { return await this.store.stat(cid, options) }
  list (options?: AbortOptions): AsyncIterable<BlobStat> { return this.store.list(options) }

  /** Deletes a value and evicts it from every connected Local before resolving. */
  async delete (cid: CIDLike, options?: AbortOptions): Promise<boolean> {
    const key = parseCID(cid)
    const existed = await this.store.delete(key, options)
    await this.evictEverywhere(key.multihash.digest)
    return existed
  }

  stats (): GlobalStats {
    return { locals: this.links.size, ...this.counters }
  }

  /** Stops serving, closes the store. Locals will try to reconnect. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const link of this.links) link.channel.abort(new ClosedError('Global is stopping'))
    await this.node.stop()
    await this.store.close()
  }

  /**
   * Tells every connected Local to evict `digest` and waits for each to confirm. A Local that
   * does not confirm in time has its rpc channel reset: it will reconcile its cache with Global
   * when it reconnects, so it can never keep serving a deleted value as if it were current.
   */
  private async evictEverywhere (digest: Uint8Array): Promise<void> {
    const timeout = this.options.evictTimeout ?? EVICT_TIMEOUT_MS
    await Promise.all([...this.links].map(async (link) => {
      const id = link.channel.allocId()
      try {
        const reply = await link.channel.request(id, encodeEvict(id, [digest]), { timeout })
        if (reply.kind !== (KIND.EVICT | RESPONSE)) throw new Error(`unexpected answer kind 0x${reply.kind.toString(16)}`)
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

  private log (line: string): void {
    this.options.log?.(line)
  }
}

/** Starts a Global peer. */
export async function createGlobal (options: GlobalOptions): Promise<GlobalPeer> {
  return await GlobalPeer.create(options)
}
