/**
 * The swarm's serving side of a Local, assembled (swarm on and at least one listen address):
 * the read-only serve store over the cache and the downloads in flight, the vouch cache asking
 * Global, the handlers (swarm-serve.ts) and the announcer. index.ts creates it and forwards
 * the cache's and the connection's events to it.
 */
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { SWARM_MAX_ADDRS, SWARM_MAX_ADDR_LEN } from '../../protocol/constants.js'
import type { RequesterContext } from '../../protocol/requester.js'
import { vouch } from '../../protocol/swarm-requester.js'
import type { DstoreNode } from '../node.js'
import type { Traffic } from '../traffic.js'
import { Announcer } from './announcer.js'
import type { GlobalSet } from './globals.js'
import type { PartialRegistry } from './partials.js'
import { callGlobal } from './retry.js'
import { ServeStore } from './serve-store.js'
import { SwarmServer } from './swarm-serve.js'
import { VouchCache } from './vouch.js'

/** PeerId multiaddr protocol code (`/p2p/`). */
const P2P_CODE = 421

export interface ServingOptions {
  node: DstoreNode
  cache: MemoryBlobStore
  partials: PartialRegistry
  connection: GlobalSet
  traffic: Traffic
  requestTimeout?: number
  flipServedByte?: boolean
}

export class Serving {
  readonly server: SwarmServer
  readonly announcer: Announcer
  readonly vouch: VouchCache

  constructor (private readonly options: ServingOptions) {
    const { node, cache, partials, connection } = options
    this.vouch = new VouchCache(async (peer: PeerId) => await callGlobal(connection, {}, async ctx => await vouch(ctx, peer)))
    this.server = new SwarmServer({
      node,
      cache,
      partials,
      store: new ServeStore(cache, partials, { flipServedByte: options.flipServedByte }),
      // A channel is handed out (current) only once its reconciliation succeeded.
      connected: () => connection.connected,
      vouch: this.vouch,
      traffic: options.traffic,
      requestTimeout: options.requestTimeout
    })
    this.announcer = new Announcer({
      cache,
      addrs: () => listenAddrs(node),
      channels: () => connection.connections.map(c => c.current).filter((ctx): ctx is RequesterContext => ctx !== undefined)
    })
  }

  async start (): Promise<void> { await this.server.start() }

  /** A channel to a Global opened and was reconciled. */
  opened (ctx: RequesterContext): void { this.announcer.opened(ctx) }

  /** A value entered the cache. */
  cached (cid: CID, size: number): void { this.announcer.cached(cid, size) }

  /** A value left the cache, or a download left the registry. */
  dropped (cid: CID): void { this.announcer.dropped(cid) }

  stop (): void { this.announcer.stop() }
}

/**
 * The addresses this node listens on, as peers dial them (without `/p2p/`, as ANNOUNCE carries
 * them): at most {@link SWARM_MAX_ADDRS} (a wildcard listen address expands to one per
 * interface, and a host may have many), loopback ones last, as only peers on this host can
 * use them.
 */
export function listenAddrs (node: DstoreNode): Multiaddr[] {
  const addrs = node.getMultiaddrs().map(a => a.decapsulateCode(P2P_CODE)).filter(a => a.bytes.length <= SWARM_MAX_ADDR_LEN)
  const loopback = (a: Multiaddr): boolean => {
    const first = a.getComponents()[0]
    return (first?.name === 'ip4' && first.value?.startsWith('127.') === true) || (first?.name === 'ip6' && first.value === '::1')
  }
  return [...addrs.filter(a => !loopback(a)), ...addrs.filter(loopback)].slice(0, SWARM_MAX_ADDRS)
}
