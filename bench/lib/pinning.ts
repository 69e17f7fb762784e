/**
 * Whether the pinned mode of the comparison can run here: it puts providers on core 0 and
 * requesters on core 1 with `taskset` (`lib/child.ts`), so it needs taskset, two cores, and
 * leave to use cores 0 and 1 (a container's cpuset may exclude them).
 */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

/** The cores of the pinned mode: providers and servers on one, requesters and clients on the other. */
export const PINNING = { provider: 0, requester: 1 } as const

/** Why `--pinned` cannot run on this machine, in one sentence; undefined when it can. */
export function pinningUnavailable (cores = availableParallelism()): string | undefined {
  if (cores < 2) return `it needs at least 2 cores (one a side), and this machine has ${cores}`
  for (const core of [PINNING.provider, PINNING.requester]) {
    const r = spawnSync('taskset', ['-c', String(core), 'true'], { encoding: 'utf8', timeout: 10_000 })
    if (r.error != null) {
      return (r.error as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'it needs taskset (util-linux), which is not installed'
        : `taskset failed: ${r.error.message}`
    }
    if (r.status !== 0) return `taskset cannot run a process on core ${core}: ${(r.stderr ?? '').trim().split('\n')[0] ?? `exit status ${String(r.status)}`}`
  }
  return undefined
}
