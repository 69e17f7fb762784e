/**
 * Where the bench's dstore roles set the serving GC policy (`tuneGcForServing`,
 * src/peers/serving-gc.ts), chosen with `DSTORE_BENCH_GC`:
 *
 * - `both` (the default, when unset): provider and requester, as `dstore global` and
 *   `dstore local` run;
 * - `global`: the provider only, as an application's own `createLocal` runs (it does not set it);
 * - `default`: neither, V8's own policy.
 *
 * Helia's roles and the raw references always keep V8's own. Anything else, the empty string
 * included, is refused: the orchestrator checks it before a role starts, so a typo cannot drop
 * dstore from a comparison.
 */
import { namesHeapGrowing } from '../../src/peers/serving-gc.js'

export const GC_POLICIES = ['both', 'global', 'default'] as const
export type GcPolicy = typeof GC_POLICIES[number]

/** The policy `value` names (`undefined`: the default, `both`), or an error saying what is accepted. */
export function parseGcPolicy (value: string | undefined): GcPolicy | Error {
  if (value === undefined) return 'both'
  if ((GC_POLICIES as readonly string[]).includes(value)) return value as GcPolicy
  return new Error(`DSTORE_BENCH_GC must be one of ${GC_POLICIES.join(', ')} (unset: both), not ${JSON.stringify(value)}`)
}

/** Whether a dstore role (`provider` or `requester`) sets the serving policy under `policy`. */
export function roleTunesGc (policy: GcPolicy, role: 'provider' | 'requester'): boolean {
  return policy === 'both' || (policy === 'global' && role === 'provider')
}

/**
 * The policy this process's `DSTORE_BENCH_GC` names (what a role runs, and the roles an
 * orchestrator spawns). A value that names none ends the process with its one line, exit 2;
 * so does a `--heap-growing-percent` of node's own, given to this process or to the roles
 * (`BENCH_CHILD_NODE_ARGS`): it would override the policy, and every role with it, so the
 * results would record a policy that did not run.
 */
export function gcPolicyInForce (): GcPolicy {
  const policy = parseGcPolicy(process.env.DSTORE_BENCH_GC)
  const childArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ')
  const why = policy instanceof Error
    ? policy.message
    : namesHeapGrowing(process.execArgv) || namesHeapGrowing(childArgs)
      ? 'node was given its own --heap-growing-percent: drop it (DSTORE_BENCH_GC chooses the GC policy)'
      : undefined
  if (why !== undefined) {
    process.stderr.write(`${why}\n`)
    process.exit(2)
  }
  return policy as GcPolicy
}
