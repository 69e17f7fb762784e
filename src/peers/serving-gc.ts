/**
 * The garbage-collection policy of a process that serves transfers: `dstore global` sets it, and
 * an application running a Global in its own process may call {@link tuneGcForServing}.
 *
 * Why: V8 counts the external memory allocated since its last mark-compact (ArrayBuffers among
 * it) against the old generation's allocation limit, and sets that limit at about twice the live
 * heap. A Global's live heap is small (about 25 MB serving one 256 MiB get), and TLS (node's
 * TLSSocket over a JavaScript stream, as @libp2p/tls runs it) hands every record's ciphertext to
 * JavaScript in a fresh buffer: as many external bytes as are sent. Once the limit has been set
 * from the live heap (after the first mark-compact under load), V8 starts a full incremental
 * marking every ~17 MiB sent, before a scavenge could free those short-lived buffers: 15
 * mark-compacts per 256 MiB, and the sender's CPU per GB doubled (docs/BENCHMARKS.md, "Where the
 * time goes"; `scripts/measure-serving-gc.ts` measures it).
 *
 * The policy: the heap grows by V8's own largest dynamic factor (4×) every time instead of a
 * factor V8 picks from its measured GC speed, so the limit leaves room for the buffers in
 * flight. Nothing else changes: scavenges still free the buffers, and a large allocation still
 * triggers V8's external-memory collection.
 */
import { setFlagsFromString } from 'node:v8'

/** `--heap-growing-percent` of a serving process: the heap grows to 4× its live size. */
export const SERVING_HEAP_GROWING_PERCENT = 300

/**
 * Sets the {@link SERVING_HEAP_GROWING_PERCENT} GC policy for this whole process (V8's flags are
 * per process), unless node was started with its own `--heap-growing-percent`, which wins.
 * Returns whether it set it.
 */
export function tuneGcForServing (): boolean {
  if (process.execArgv.some(a => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false
  setFlagsFromString(`--heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}`)
  return true
}
