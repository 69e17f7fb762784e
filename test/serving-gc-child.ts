/**
 * Child of test-serving-gc: a send-like churn (256 MiB of short-lived 16 KiB buffers, as TLS
 * hands a sender its ciphertext, with little else on the heap) over a ~20 MB live heap, after a
 * large value was allocated and dropped. Prints `{ tuned, majors }`: whether
 * `tuneGcForServing()` set its policy, and the mark-compacts during the churn.
 *
 * `DSTORE_TEST_LOW_GROWTH=1` first sets a low heap growth (20%) at run time, standing in for the
 * factor V8 picks itself for a busy process, under which the churn marks again and again.
 * `DSTORE_TEST_TUNE=1` then calls `tuneGcForServing()`.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { setTimeout as sleep, setImmediate as turn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { tuneGcForServing } from '../src/peers/serving-gc.js'

if (process.env.DSTORE_TEST_LOW_GROWTH === '1') setFlagsFromString('--heap-growing-percent=20')
const tuned = process.env.DSTORE_TEST_TUNE === '1' ? tuneGcForServing() : false
const live = Array.from({ length: 250_000 }, (_, i) => ({ i, s: `x${i}` }))
for (let k = 0; k < 2; k++) {
  let big: Buffer | undefined = Buffer.alloc(256 * 2 ** 20, 1)
  big = undefined
  await sleep(20)
  void big
}
let majors = 0
const observer = new PerformanceObserver(list => {
  for (const e of list.getEntries()) {
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++
  }
})
observer.observe({ entryTypes: ['gc'] })
for (let i = 0; i < 16_384; i++) {
  const b = Buffer.allocUnsafeSlow(16_384)
  b[0] = 1
  if (i % 64 === 0) await turn()
}
await sleep(50)
observer.disconnect()
process.stdout.write(JSON.stringify({ tuned, majors, live: live.length }) + '\n')
