/**
 * Preload for a bench role (`--import dist/scripts/gc-log.js`, via BENCH_CHILD_NODE_ARGS): logs
 * every garbage collection of the main thread to stderr (`--trace-gc` writes to stdout, which
 * is the roles' answer channel). One line per GC: role, kind, pause in ms.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks'

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-cb'
}
const role = process.argv[2] ?? 'role'
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1
    process.stderr.write(`[gc ${role}] ${KINDS[kind] ?? String(kind)} ${e.duration.toFixed(2)} ms\n`)
  }
}).observe({ entryTypes: ['gc'] })
