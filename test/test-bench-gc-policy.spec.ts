/**
 * `DSTORE_BENCH_GC` (bench/lib/gc-policy.ts): which dstore role sets the serving GC policy, and
 * that a value naming no policy is refused in one line, by a role and by the orchestrator before
 * anything runs (a role that refused to start once dropped dstore from a comparison). The
 * orchestrator is given a bench that does not exist, so a check that regressed fails on that
 * other message, and nothing runs.
 */
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { GC_POLICIES, parseGcPolicy, roleTunesGc } from '../bench/lib/gc-policy.js'

const BENCH = fileURLToPath(new URL('../bench/', import.meta.url))

describe('bench GC policy (DSTORE_BENCH_GC)', function () {
  this.timeout(30_000)

  it('names where the policy is set; unset is both', () => {
    assert.equal(parseGcPolicy(undefined), 'both')
    for (const p of GC_POLICIES) assert.equal(parseGcPolicy(p), p)
    assert.deepEqual(GC_POLICIES.map(p => [roleTunesGc(p, 'provider'), roleTunesGc(p, 'requester')]), [[true, true], [true, false], [false, false]])
  })

  it('refuses a value that names no policy, the empty string included', () => {
    for (const v of ['', 'all', 'Both', 'serving']) {
      const err = parseGcPolicy(v)
      assert.ok(err instanceof Error, v)
      assert.match(err.message, /DSTORE_BENCH_GC must be one of both, global, default/)
    }
  })

  it('a dstore role and the orchestrator refuse a --heap-growing-percent of node\'s own, whatever the policy', () => {
    for (const policy of GC_POLICIES) {
      const role = spawnSync(process.execPath, ['--heap-growing-percent=0', BENCH + 'roles/dstore.js', 'provider'], { env: { ...process.env, DSTORE_BENCH_GC: policy }, encoding: 'utf8', timeout: 20_000 })
      assert.equal(role.status, 2, role.stderr)
      assert.match(role.stderr.trim(), /^node was given its own --heap-growing-percent: drop it/)
      const run = spawnSync(process.execPath, [BENCH + 'run.js', '--only', 'no-such-bench'], { env: { ...process.env, DSTORE_BENCH_GC: policy, BENCH_CHILD_NODE_ARGS: '--heap-growing-percent=0' }, encoding: 'utf8', timeout: 20_000 })
      assert.equal(run.status, 2, run.stderr)
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
      assert.match(run.stderr, /^node was given its own --heap-growing-percent/)
    }
  })

  for (const [what, argv] of [['a dstore role', ['roles/dstore.js', 'provider']], ['the orchestrator', ['run.js', '--only', 'no-such-bench']]] as const) {
    it(`${what} exits 2 with one line on a bad value, before starting anything`, () => {
      const r = spawnSync(process.execPath, [BENCH + argv[0], ...argv.slice(1)], { env: { ...process.env, DSTORE_BENCH_GC: 'all' }, encoding: 'utf8', timeout: 20_000 })
      assert.equal(r.status, 2, r.stderr)
      assert.equal(r.stdout, '')
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0], /DSTORE_BENCH_GC must be one of .* not "all"/)
    })
  }
})
