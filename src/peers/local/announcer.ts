/**
 * Tells Global what this Local holds, so its tracker can send other Locals here (ANNOUNCE on
 * the Local's existing rpc channel, docs/PROTOCOL.md):
 * - on each new channel (after reconciliation): this Local's addresses and every cached value
 *   of at least {@link SWARM_MIN_SIZE} bytes, as complete;
 * - then, batched every {@link ANNOUNCE_DELAY_MS}, to every connected Global: complete when such
 *   a value enters the cache, dropped when it leaves (LRU eviction, invalidation) or when a
 *   download of it ends without it being cached.
 *
 * Best effort: a lost announcement costs a peer a refused or missed range (it then fetches it
 * elsewhere, Global last), never a wrong byte, so failures are not retried: the next channel
 * announces everything again.
 */
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import type { MemoryBlobStore } from '../../core/store/memory.js'
import { MAX_BATCH, SWARM_MIN_SIZE } from '../../protocol/constants.js'
import type { RequesterContext } from '../../protocol/requester.js'
import { SWARM_STATE, type AnnounceEntry } from '../../protocol/swarm-messages.js'
import { announce } from '../../protocol/swarm-requester.js'

/** How long changes are gathered before one ANNOUNCE carries them. */
export const ANNOUNCE_DELAY_MS = 50

const { DROPPED, COMPLETE } = SWARM_STATE

export interface AnnouncerOptions {
  cache: MemoryBlobStore
  /** The addresses peers dial this Local on (without `/p2p/`). */
  addrs: () => Multiaddr[]
  /** The channels to Globals open (and reconciled) now. */
  channels: () => RequesterContext[]
}

export class Announcer {
  /** Changes not sent yet: CID text -> (digest, state); the last change of a key wins. */
  private readonly pending = new Map<string, AnnounceEntry>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  /** ANNOUNCE messages sent, and those that failed. */
  sent = 0
  failed = 0

  constructor (private readonly options: AnnouncerOptions) {}

  /** A new channel to a Global: announce addresses and every large cached value on it. */
  opened (ctx: RequesterContext): void {
    if (this.stopped) return
    void (async () => {
      const entries: AnnounceEntry[] = []
      for await (const stat of this.options.cache.list()) {
        if (stat.size >= SWARM_MIN_SIZE) entries.push({ digest: stat.cid.multihash.digest, state: COMPLETE })
      }
      await this.send(ctx, entries, this.options.addrs())
    })().catch(() => { this.failed++ })
  }

  /** A value entered the cache. */
  cached (cid: CID, size: number): void {
    if (size >= SWARM_MIN_SIZE) this.queue(cid, COMPLETE)
  }

  /** A value left the cache, or a download ended without caching it: announced dropped unless it is (still) cached. */
  dropped (cid: CID): void {
    if (this.stopped) return
    void this.options.cache.has(cid).then(has => { if (!has) this.queue(cid, DROPPED) }, () => {})
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.pending.clear()
  }

  private queue (cid: CID, state: typeof DROPPED | typeof COMPLETE): void {
    if (this.stopped) return
    this.pending.set(cid.toString(), { digest: cid.multihash.digest, state })
    this.timer ??= setTimeout(() => { this.timer = undefined; this.flush() }, ANNOUNCE_DELAY_MS)
  }

  private flush (): void {
    const entries = [...this.pending.values()]
    this.pending.clear()
    if (entries.length === 0 || this.stopped) return
    for (const ctx of this.options.channels()) void this.send(ctx, entries).catch(() => { this.failed++ })
  }

  /** Sends `entries` (in batches) on `ctx`; the addresses with the first batch. */
  private async send (ctx: RequesterContext, entries: AnnounceEntry[], addrs?: Multiaddr[]): Promise<void> {
    let first = true
    for (let i = 0; i < entries.length || first; i += MAX_BATCH) {
      if (!ctx.channel.open || this.stopped) return
      await announce(ctx, { addrs: first ? addrs : undefined, entries: entries.slice(i, i + MAX_BATCH) })
      this.sent++
      first = false
    }
  }
}
