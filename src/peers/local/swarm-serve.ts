/**
 * The serving side of a Local in the swarm (docs/PROTOCOL.md, "Local-to-Local serving"): other
 * Locals dial it and read verified ranges of what it holds, over the same protocols Global
 * serves (RPC_PROTOCOL GET, STAT, and HAVE; BLOB_PROTOCOL GET), answered by the same provider
 * code over a read-only {@link ServeStore} (the cache, and downloads in flight).
 *
 * Who is served, and when (docs/SECURITY.md, "The swarm"):
 * - only while this Local is connected to a Global and reconciled with it (its cache holds
 *   nothing Global deleted while it was away): otherwise every request is answered
 *   GlobalUnreachableError;
 * - only peers Global vouches for (vouch.ts): otherwise PermissionDeniedError;
 * - reads only: PUT, DELETE, LIST (and the Local-to-Global kinds) are refused with
 *   PermissionDeniedError, an unknown kind is a ProtocolError (the channel goes on);
 * - a peer that breaks the framing loses that stream only (rpc.ts, blob-stream.ts rules), so
 *   garbage from one peer does not stop this Local serving the others; a peer gets at most
 *   MAX_CONNECTIONS_PER_PEER connections (the newest go), as at Global, so it cannot multiply
 *   its stream limits.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { cidFromDigest } from '../../core/cid.js'
import { GlobalUnreachableError, PermissionDeniedError, ProtocolError } from '../../core/errors.js'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { BLOB_PROTOCOL, KIND, MAX_BLOB_STREAMS, MAX_CONNECTIONS_PER_PEER, MAX_RPC_STREAMS, RPC_PROTOCOL } from '../../protocol/constants.js'
import type { MessageReader } from '../../protocol/messages.js'
import { createProviderHandler, handleBlobStream, type ProviderOptions } from '../../protocol/provider.js'
import { RpcChannel, type RequestHandler } from '../../protocol/rpc.js'
import { decodeHaveRequest, encodeHaveResponse } from '../../protocol/swarm-messages.js'
import type { DstoreNode } from '../node.js'
import type { Traffic } from '../traffic.js'
import type { PartialRegistry } from './partials.js'
import type { ServeStore } from './serve-store.js'
import type { VouchCache } from './vouch.js'

/** Kinds a peer may send: reads, and REPORT (accepted and ignored: what we serve is verified). */
const SERVED = new Set<number>([KIND.GET, KIND.STAT, KIND.HAVE, KIND.REPORT])
/** Kinds that are real requests, but not for a Local to answer to a peer. */
const REFUSED = new Set<number>([KIND.PUT, KIND.DELETE, KIND.LIST, KIND.EVICT, KIND.ANNOUNCE, KIND.SOURCES, KIND.VOUCH, KIND.BADPEER])

export interface SwarmServerOptions {
  node: DstoreNode
  store: ServeStore
  cache: MemoryBlobStore
  partials: PartialRegistry
  /** Whether this Local is connected to a Global and reconciled with it now. */
  connected: () => boolean
  vouch: VouchCache
  /** Counts value bytes served to peers (source `peer`) and records the transfers. */
  traffic: Traffic
  requestTimeout?: number
}

/** Registers the serving handlers on the Local's node ({@link start}); the node's stop ends them. */
export class SwarmServer {
  /** Value bytes served to peers (a range's length for a range). */
  bytesToPeers = 0
  /** Bytes written to peers' streams (value bytes and their proofs). */
  wireBytesToPeers = 0
  /** Requests refused: not connected to Global, or not vouched for. */
  refused = 0
  private readonly channels = new Set<RpcChannel>()

  constructor (private readonly options: SwarmServerOptions) {}

  async start (): Promise<void> {
    const { node } = this.options
    node.addEventListener('connection:open', (evt) => {
      const connection = evt.detail
      if (node.getConnections(connection.remotePeer).length > MAX_CONNECTIONS_PER_PEER) {
        connection.abort(new ProtocolError(`more than ${MAX_CONNECTIONS_PER_PEER} connections from one peer`))
      }
    })
    await node.handle(RPC_PROTOCOL, (stream: Stream, connection: Connection) => {
      const channel: RpcChannel = new RpcChannel(stream, this.handler(connection.remotePeer), {
        requestTimeout: this.options.requestTimeout,
        onClose: () => { this.channels.delete(channel) }
      })
      this.channels.add(channel)
    }, { maxInboundStreams: MAX_RPC_STREAMS, maxOutboundStreams: MAX_RPC_STREAMS })
    await node.handle(BLOB_PROTOCOL, (stream: Stream, connection: Connection) => {
      void this.serveBlob(stream, connection.remotePeer)
    }, { maxInboundStreams: MAX_BLOB_STREAMS, maxOutboundStreams: MAX_BLOB_STREAMS })
  }

  /** Peers' rpc channels open now. */
  get peerChannels (): number { return this.channels.size }

  /** @throws {GlobalUnreachableError} unless connected and reconciled. @throws {PermissionDeniedError} unless Global vouches for `peer`. */
  private async admit (peer: PeerId): Promise<void> {
    try {
      if (!this.options.connected()) throw new GlobalUnreachableError('this Local is not connected to Global (and reconciled with it): it serves no peer until it is')
      await this.options.vouch.check(peer)
    } catch (err) {
      this.refused++
      throw err
    }
  }

  private handler (peer: PeerId): RequestHandler {
    const provider = createProviderHandler(this.providerOptions())
    return async (msg: MessageReader): Promise<Uint8Array> => {
      if (REFUSED.has(msg.kind)) throw new PermissionDeniedError(`a Local serves peers GET, STAT and HAVE only, not kind 0x${msg.kind.toString(16)}`)
      if (!SERVED.has(msg.kind)) throw new ProtocolError(`unknown request kind 0x${msg.kind.toString(16)}`)
      await this.admit(peer)
      if (msg.kind === KIND.HAVE) return await this.answerHave(msg)
      return await provider(msg)
    }
  }

  /** A blob stream: admitted before its head is read; refused (an ERROR frame) after, as Global refuses. */
  private async serveBlob (stream: Stream, peer: PeerId): Promise<void> {
    let refusal: unknown
    try {
      await this.admit(peer)
    } catch (err) {
      refusal = err
    }
    const options = this.providerOptions()
    await handleBlobStream(stream, {
      ...options,
      authorize: (access) => {
        if (refusal !== undefined) throw refusal
        options.authorize?.(access)
      }
    })
  }

  /** The provider's options: the serve store, reads only, served bytes counted as `peer`. */
  private providerOptions (): ProviderOptions {
    const { store, traffic } = this.options
    return {
      store,
      onDelete: async () => { throw new PermissionDeniedError('a Local does not delete values for peers') },
      requestTimeout: this.options.requestTimeout,
      authorize: (access) => {
        if (access === 'write') throw new PermissionDeniedError('a Local serves peers reads only')
      },
      canServe: async (digest, range) => { await store.canServe(digest, range) },
      onBytes: (dir, n) => { if (dir === 'out') this.wireBytesToPeers += n },
      onTransfer: (t) => {
        if (t.op !== 'get') return
        this.bytesToPeers += t.bytes
        if (t.partial === true) traffic.served('peer', t.bytes)
        else traffic.record(cidFromDigest(t.digest).toString(), 'get', 'peer', t.bytes, t.started, t.error === undefined)
      }
    }
  }

  /** HAVE: complete (a cached value, or a finished download), partial (its bitfields), or none. */
  private async answerHave (msg: MessageReader): Promise<Uint8Array> {
    const { cache, partials } = this.options
    const digest = decodeHaveRequest(msg)
    const cid = cidFromDigest(digest)
    // Without bitfields, or with every piece held: complete.
    if (await cache.has(cid)) return encodeHaveResponse(msg.id, { size: (await cache.stat(cid)).size })
    const pv = partials.get(cid)
    if (pv === undefined) return encodeHaveResponse(msg.id, undefined)
    return encodeHaveResponse(msg.id, { size: pv.size, have: pv.have, fetching: pv.fetching })
  }
}
