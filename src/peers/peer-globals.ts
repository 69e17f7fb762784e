/**
 * A Global's peer Globals (`peerGlobals`, `dstore global --peer-global`): the other Globals
 * serving the same store. A delete through this Global is passed on to each of them as an EVICT
 * on an rpc channel this Global opens to it; each evicts the value from its own Locals and then
 * answers. Peers are listed both ways (a full mesh): a Global accepts an EVICT only from a
 * PeerId in its own list, and does not pass a relayed eviction on (no loops).
 *
 * A peer that cannot be dialled or does not answer within the eviction timeout is reported
 * (the delete ends with PartialDeleteError naming it); its Locals drop the value when they
 * reconnect to it (the reconciliation) or at their next re-check (`recheckInterval`).
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { ConfigError, ProtocolError } from '../core/errors.js'
import { KIND, RPC_PROTOCOL } from '../protocol/constants.js'
import { evictBody } from '../protocol/messages.js'
import { RpcChannel } from '../protocol/rpc.js'
import type { DstoreNode } from './node.js'

/** PeerId multiaddr protocol code (`/p2p/`). */
const P2P_CODE = 421

interface PeerGlobal {
  id: string
  addrs: Multiaddr[]
  channel?: RpcChannel
  /** A dial in progress, shared by concurrent deletes. */
  opening?: Promise<RpcChannel>
}

/** Peer Globals' addresses grouped by PeerId. @throws {ConfigError} for an address that does not parse or lacks its `/p2p/` id. */
export function parsePeerGlobals (addrs: string[]): Array<{ id: string, addrs: Multiaddr[] }> {
  if (!Array.isArray(addrs) || !addrs.every(a => typeof a === 'string')) throw new ConfigError('peerGlobals must be an array of multiaddr strings')
  const byId = new Map<string, PeerGlobal>()
    for (const text of addrs) {
      let addr: Multiaddr
      try {
        addr = multiaddr(text)
      } catch (err) {
        throw new ConfigError(`peer Global ${JSON.stringify(text.slice(0, 200))} is not a multiaddr (${(err as Error).message})`, { cause: err })
      }
      const id = addr.getComponents().find(c => c.code === P2P_CODE)?.value
      if (id === undefined) throw new ConfigError(`peer Global ${text} needs its /p2p/ id (it is how the peer is trusted to relay deletes)`)
      const peer = byId.get(id)
      if (peer === undefined) byId.set(id, { id, addrs: [addr] })
      else peer.addrs.push(addr)
    }
  return [...byId.values()]
}

export class PeerGlobals {
  private readonly peers: PeerGlobal[]

  constructor (private readonly node: DstoreNode, peers: Array<{ id: string, addrs: Multiaddr[] }>, private readonly timeout: number) {
    this.peers = peers.map(p => ({ id: p.id, addrs: p.addrs }))
  }

  /** The peer Globals' PeerIds (allowed to send this Global an EVICT). */
  get ids (): Set<string> { return new Set(this.peers.map(p => p.id)) }

  get size (): number { return this.peers.length }

  /** Whether `peerId` is one of the peer Globals. */
  has (peerId: string): boolean { return this.peers.some(p => p.id === peerId) }

  /**
   * Passes the eviction of `digests` to every peer Global and waits for each answer (each up
   * to the relay timeout, twice the eviction timeout, dial included). Returns the PeerIds that did not answer, with why.
   */
  async relayEvict (digests: Uint8Array[]): Promise<Array<{ id: string, reason: string }>> {
    const failed: Array<{ id: string, reason: string }> = []
    await Promise.all(this.peers.map(async (peer) => {
      const signal = AbortSignal.timeout(this.timeout)
      try {
        const channel = await this.channel(peer, signal)
        await channel.request(KIND.EVICT, evictBody(digests), { timeout: this.timeout, signal })
      } catch (err) {
        failed.push({ id: peer.id, reason: (err as Error).message })
        // A channel that did not answer in time may be dead without knowing it: dial afresh next time.
        peer.channel?.abort(err instanceof Error ? err : new Error(String(err)))
        peer.channel = undefined
      }
    }))
    return failed
  }

  /** Closes the channels to the peer Globals. */
  async close (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await p.channel?.close().catch(() => {}) }))
  }

  private async channel (peer: PeerGlobal, signal: AbortSignal): Promise<RpcChannel> {
    if (peer.channel?.open === true) return peer.channel
    peer.opening ??= (async () => {
      try {
        const connection = await this.node.dial(peer.addrs, { signal })
        const stream = await connection.newStream(RPC_PROTOCOL, { signal })
        // This side only asks: a peer Global never sends requests on a channel it accepted.
        const channel = new RpcChannel(stream, async (msg) => { throw new ProtocolError(`a Global's relay channel does not answer requests of kind 0x${msg.kind.toString(16)}`) })
        peer.channel = channel
        return channel
      } finally {
        peer.opening = undefined
      }
    })()
    return await peer.opening
  }
}
