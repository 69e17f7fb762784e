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
 * A Local's side: its TCP reads and TLS cleartext are fresh buffers too, and under V8's policy
 * an aged Local ran 9–15 mark-compacts per 256 MiB received, against 1 with this one. With one
 * Local getting six 256 MiB values in turn (`scripts/measure-serving-gc.ts --pinned --one-local
 * --gets 6`, gets 2–6), the receiver cost 4.20–5.55 s of CPU per GB (median 4.63) under V8's
 * policy on both sides and 3.27–3.77 (median 3.63) with this one. What it costs a Local: its evicted
 * values, and a stopped Local's cache, are dead external memory that only a mark-compact
 * frees, and there are fewer of those. In that run the Local's RSS after each get, from the
 * third on, was 932–937 MiB under V8's policy on both sides and 927–930 under this one (its
 * two cached values and one dead), but once 1,187 (two dead); a full collection left 672–681
 * either way. With a fresh Local per get (`--pinned --gets 4`), the RSS after each Local
 * stopped was 406–418 MiB with V8's policy in the requester (one stopped cache mapped) and
 * up to 925–931 with this one (three; two runs), and a full collection brought it back to
 * 157–160 either way: nothing leaks, but dead values wait longer.
 * `dstore repl`, an interactive Local, keeps V8's own policy.
 */
import { setFlagsFromString } from 'node:v8'

/** Whether node arguments `args` give their own `--heap-growing-percent` (any spelling node accepts). */
export function namesHeapGrowing (args: readonly string[]): boolean {
  return args.some(a => /^--?heap[-_]growing[-_]percent(=|$)/.test(a))
}

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
  if (namesHeapGrowing(process.execArgv)) return false
  setFlagsFromString(`--heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}`)
  return true
}
