/**
 * A Local's set of Globals: one supervised {@link GlobalConnection} per Global, and the choice
 * of which one a call goes to.
 *
 * - Several Globals: the addresses given are grouped by their `/p2p/` id, each id one Global
 *   (addresses without an id form one Global together, as with a single Global).
 * - Spread: a call about a key goes to the Global ranked first for that key by rendezvous
 *   (highest-random-weight) hashing of the key with each Global's PeerId, so each key has one
 *   home and adding or removing a Global moves only the keys it ranks first. Calls without a
 *   key (list, ready) go to the first configured Global that is connected.
 * - Failover: a Global whose channel is not open is skipped; when none is open, the call waits
 *   for whichever opens first, up to `connectTimeout`. A call that failed on one Global is
 *   retried on another (retry.ts asks with the failed channel to avoid).
 *
 * Globals of one set must serve the same store (docs/ARCHITECTURE.md, "Several Globals").
 */
import { createHash } from 'node:crypto'
import type { Multiaddr } from '@multiformats/multiaddr'
import { linkSignals, raceAbort, throwIfAborted } from '../../core/abort.js'
import { ClosedError, GlobalUnreachableError } from '../../core/errors.js'
import type { RequesterContext } from '../../protocol/requester.js'
import type { DstoreNode } from '../node.js'
import { GlobalConnection, type ConnectionOptions } from './connection.js'

/** PeerId multiaddr protocol code (`/p2p/`). */
const P2P_CODE = 421

/** What retry.ts needs of the Globals a call may use. */
export interface GlobalRoute {
  /** Whether the Local is stopped (calls end with ClosedError). */
  readonly stopped: boolean
  /** How many times a call whose channel failed may be retried (one per Global, at least one). */
  readonly retries: number
  /**
   * An open channel for a call about `key` (rendezvous order), preferring any Global other
   * than the one of `avoid` (a channel that just failed the call). @throws {GlobalUnreachableError}
   */
  context: (signal?: AbortSignal, key?: Uint8Array, avoid?: RequesterContext) => Promise<RequesterContext>
}

/** The addresses grouped into Globals by their `/p2p/` id, in the order first named. */
export function groupGlobals (addrs: Multiaddr[]): Multiaddr[][] {
  const groups = new Map<string, Multiaddr[]>()
  for (const addr of addrs) {
    const id = addr.getComponents().find(c => c.code === P2P_CODE)?.value ?? ''
    const group = groups.get(id)
    if (group === undefined) groups.set(id, [addr])
    else group.push(addr)
  }
  return [...groups.values()]
}

/** The connections to every Global of a Local. */
export class GlobalSet implements GlobalRoute {
  readonly connections: GlobalConnection[]
  /** Each Global's rendezvous seed (its PeerId, or its addresses when it has none). */
  private readonly seeds: Buffer[]

  constructor (node: DstoreNode, groups: Multiaddr[][], options: ConnectionOptions) {
    this.connections = groups.map(addrs => new GlobalConnection(node, addrs, options))
    this.seeds = groups.map(addrs => Buffer.from(addrs.map(a => a.getComponents().find(c => c.code === P2P_CODE)?.value ?? a.toString()).sort()[0]))
  }

  start (): void { for (const c of this.connections) c.start() }

  get stopped (): boolean { return this.connections[0].stopped }
  get retries (): number { return Math.max(1, this.connections.length) }
  /** Whether a channel to at least one Global is open. */
  get connected (): boolean { return this.connections.some(c => c.connected) }
  /** How many Globals have an open channel now. */
  get connectedCount (): number { return this.connections.filter(c => c.connected).length }

  /** The Globals in the order a call about `key` tries them (rendezvous hashing; configured order without a key). */
  order (key?: Uint8Array): GlobalConnection[] {
    if (key === undefined || this.connections.length === 1) return this.connections
    const scored = this.connections.map((c, i) => ({ c, w: createHash('sha256').update(this.seeds[i]).update(key).digest().readBigUInt64BE(0) }))
    scored.sort((a, b) => a.w < b.w ? 1 : a.w > b.w ? -1 : 0)
    return scored.map(s => s.c)
  }

  async context (signal?: AbortSignal, key?: Uint8Array, avoid?: RequesterContext): Promise<RequesterContext> {
    // One Global: exactly its own connection's waiting and errors.
    if (this.connections.length === 1) return await this.connections[0].context(signal)
    if (this.stopped) throw new ClosedError('this Local is stopped')
    const order = this.order(key)
    // A Global still on its first dial is not known to be down: the key's first choice is waited
    // for (up to that dial's end), so a new Local's first calls are spread as later ones are.
    if (avoid === undefined && order[0].current === undefined) await raceAbort(order[0].firstAttempt, signal)
    let fallback: RequesterContext | undefined
    for (const c of order) {
      const ctx = c.current
      if (ctx === undefined) continue
      if (ctx !== avoid) return ctx
      fallback = ctx
    }
    // The channel that failed is still open (a cut blob stream): one retry on it, as with one Global.
    if (fallback !== undefined) return fallback
    return await this.firstOpen(order, signal)
  }

  /** Stops every connection; resolves once all connect loops have ended (after the node stopped). */
  async stop (stopNode: () => Promise<void>): Promise<void> {
    let stopping: Promise<void> | undefined
    const node = async (): Promise<void> => { stopping ??= stopNode(); await stopping }
    await Promise.all(this.connections.map(async c => { await c.stop(node) }))
  }

  /** Waits for whichever Global's channel opens first (each up to `connectTimeout`). */
  private async firstOpen (order: GlobalConnection[], signal?: AbortSignal): Promise<RequesterContext> {
    throwIfAborted(signal)
    const done = linkSignals(signal)
    try {
      return await Promise.any(order.map(async c => await c.context(done.signal)))
    } catch (err) {
      if (signal?.aborted === true) throw (err as AggregateError).errors?.[0] ?? err
      if (this.stopped) throw new ClosedError('this Local is stopped')
      const errors = (err as AggregateError).errors ?? [err]
      const why = errors.map(e => (e as Error).message).join('; ')
      throw new GlobalUnreachableError(`none of the ${order.length} Globals is reachable: ${why}`, { cause: errors[0] })
    } finally {
      done.end()
    }
  }
}
