/**
 * The garbage-collection policy of a process that moves large values: `dstore global` and
 * `dstore local` set it, and an application running a Global or a Local in its own process may
 * call {@link tuneGcForServing}. A library does not set process-wide flags for its caller, so
 * `createGlobal` and `createLocal` do not.
 *
 * Why: V8 before 12 (node 20) counts the external memory allocated since its last mark-compact
 * (ArrayBuffers among it) against the old generation's allocation limit, and sets that limit at
 * about twice the live heap. (Later V8s account for external memory differently, with limits
 * grown by the same factor; on node 24 the policy measured as large a gain.) A Global's live heap
 * is small (about 25 MB serving one 256 MiB get), and TLS (node's TLSSocket over a JavaScript
 * stream, as @libp2p/tls runs it) hands every record's ciphertext to JavaScript in a fresh
 * buffer: as many external bytes as are sent. Once the limit has been set from the live heap
 * (after the first mark-compact under load), V8 started a full incremental marking every ~17 MiB
 * sent, before a scavenge could free those short-lived buffers: 15 mark-compacts per 256 MiB,
 * and the sender's CPU per GB doubled (docs/BENCHMARKS.md, "Where the time goes";
 * `scripts/measure-serving-gc.ts` measures it).
 *
 * The policy: the heap's limits grow by V8's own largest dynamic factor (4× the live heap) after
 * every mark-compact, instead of a factor V8 picks from its measured GC speed, so they leave room
 * for the buffers in flight. What it costs: the factor also overrides V8's memory-saving choices
 * (a smaller factor near the heap's maximum, or after the memory reducer or a low-memory
 * notification), so the process may hold up to 4× its live heap, and the memory reducer no
 * longer shrinks it. For a Global, whose live heap is small, that is tens of MB.
 *
 * A Local's side: its TCP reads and TLS cleartext are fresh buffers too. With one Local getting
 * 256 MiB values in turn, the policy in both processes took the receiver from 4.5–5.6 s of CPU
 * per GB (median 5.3) to 3.1–5.8 (median 3.4) (`scripts/measure-serving-gc.ts --one-local`,
 * docs/BENCHMARKS.md). A Local's evicted values, and a stopped Local's cache, are external
 * memory freed only by a mark-compact under either policy: in that run the policy left the
 * Local's RSS where V8's own does (927 against 930 MiB for a cache holding one value), with
 * once one more dead value mapped (1,185 MiB) until a later allocation started a collection.
 */
import { setFlagsFromString } from 'node:v8'

/** `--heap-growing-percent` of a serving process: the heap grows to 4× its live size. */
export const SERVING_HEAP_GROWING_PERCENT = 300

/**
 * Sets the {@link SERVING_HEAP_GROWING_PERCENT} GC policy for this whole process: V8's flags are
 * per process, so it applies to worker threads too, and it cannot be undone (node documents a
 * flag changed after start-up as possibly unpredictable; this one is read at every
 * mark-compact). Nothing is set when node was started with its own `--heap-growing-percent`
 * (`node --heap-growing-percent=0` keeps V8's own policy); only node's command line is
 * checked, not an earlier `v8.setFlagsFromString`. Returns whether it set the policy.
 */
export function tuneGcForServing (): boolean {
  if (process.execArgv.some(a => /^--?heap[-_]growing[-_]percent(=|$)/.test(a))) return false
  setFlagsFromString(`--heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}`)
  return true
}
