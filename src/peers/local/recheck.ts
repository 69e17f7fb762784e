/**
 * The periodic re-check of a Local's cache: every `recheckInterval`, every cached CID is asked
 * about (one batched STAT, as the reconciliation on a reconnect) of one reachable Global, and
 * the values it no longer has are dropped. When no Global can be asked (a partition), nothing
 * cached can be vouched for, and the whole cache is dropped. So a value deleted anywhere is
 * served from this cache at most `recheckInterval + connectTimeout + requestTimeout` after its
 * delete returned, even when the EVICT that should have reached this Local was lost (a peer
 * Global unreachable during the delete). docs/SECURITY.md states the bound.
 */
import type { MemoryBlobStore } from '../../core/store/memory.js'
import type { RequesterContext } from '../../protocol/requester.js'
import type { Coherence } from './coherence.js'
import { callGlobal } from './retry.js'
import type { GlobalRoute } from './globals.js'

export const DEFAULT_RECHECK_INTERVAL = 60_000

export class CacheRecheck {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  /** Re-checks completed, and those that found no Global (the cache was dropped). */
  checks = 0
  failures = 0

  constructor (private readonly route: GlobalRoute, private readonly cache: MemoryBlobStore, private readonly coherence: Coherence,
    private readonly interval: number, private readonly stopped: AbortSignal) {}

  /** Starts the period (no-op for an interval of 0). */
  start (): void {
    if (this.interval === 0 || this.timer !== undefined) return
    this.timer = setInterval(() => { this.running ??= this.run().finally(() => { this.running = undefined }) }, this.interval)
    this.timer.unref()
  }

  /** Stops the period and waits for a re-check in progress. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.running
  }

  /** One re-check (exported for the period above; a reconnect reconciles on its own). */
  async run (): Promise<void> {
    if (this.stopped.aborted || this.cache.stats().entries === 0) return
    try {
      await callGlobal(this.route, { signal: this.stopped }, async (ctx: RequesterContext) => { await this.coherence.reconcile(ctx) })
      this.checks++
    } catch {
      if (this.stopped.aborted) return
      // No Global answered: the cache may hold values deleted meanwhile, so none is served.
      this.failures++
      await this.coherence.invalidateAll()
    }
  }
}
