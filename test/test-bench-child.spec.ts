/**
 * The bench's child processes (bench/lib/child.ts): `stop` ends a child however it stands. A
 * child that had died (killed by a `callWithin` time limit, as a failed scenario leaves it)
 * once made `stop` wait forever for an answer to `exit`, and with it the whole bench.
 */
import { strict as assert } from 'node:assert'
import { Child } from '../bench/lib/child.js'

/** Resolves with `p`'s value, or rejects if it takes longer than `ms`. */
async function within<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`still waiting after ${ms} ms`)) }, ms) })])
  } finally { clearTimeout(timer) }
}

describe('bench child processes', function () {
  this.timeout(30_000)
  const children: Child[] = []
  const spawnRaw = (): Child => { const c = new Child('roles/raw.js', ['client']); children.push(c); return c }
  // A failed test must not leave a (stopped) child behind.
  afterEach(async () => { for (const c of children.splice(0)) if (c.running) await c.kill() })

  it('stop ends a child that answers', async () => {
    const child = spawnRaw()
    assert.equal(typeof (await child.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 20_000)).cpuMs, 'number')
    await within(child.stop(), 10_000)
    assert.equal(child.running, false)
  })

  // SIGKILL: dead, so no answer to exit can come; SIGSTOP: alive, but it answers nothing, so
  // stop must kill it after its grace time.
  const signals: Array<[NodeJS.Signals, string]> = [['SIGKILL', 'was killed'], ['SIGSTOP', 'does not answer exit']]
  for (const [signal, state] of signals) {
    it(`stop ends a child that ${state} (${signal})`, async () => {
      const child = spawnRaw()
      await child.callWithin({ cmd: 'cpu' }, 20_000)
      process.kill(child.pid as number, signal)
      await within(child.stop(), 10_000)
      assert.equal(child.running, false)
    })
  }
})
