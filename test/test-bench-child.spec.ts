/**
 * The bench's child processes (bench/lib/child.ts): `stop` ends a child however it stands, and
 * says how. A child that had died (killed by a `callWithin` time limit, as a failed scenario
 * leaves it) once made `stop` wait forever for an answer to `exit`, and with it the whole bench.
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
  /** A started raw-stream client role (it answers `cpu` once it runs). */
  const spawnRaw = async (): Promise<Child> => {
    const c = new Child('roles/raw.js', ['client'])
    children.push(c)
    assert.equal(typeof (await c.callWithin<{ cpuMs: number }>({ cmd: 'cpu' }, 20_000)).cpuMs, 'number')
    return c
  }
  // A failed test must not leave a (stopped) child behind.
  afterEach(async () => { for (const c of children.splice(0)) if (c.running) await c.kill() })

  it('stop ends a child that answers exit, promptly and without killing it', async () => {
    const child = await spawnRaw()
    assert.equal(await within(child.stop(), 3_000), 'exited')
    assert.equal(child.running, false)
  })

  it('stop returns at once for a child that was killed (no answer to exit can come)', async () => {
    const child = await spawnRaw()
    process.kill(child.pid as number, 'SIGKILL')
    assert.equal(await within(child.stop(), 3_000), 'exited')
    assert.equal(child.running, false)
    // And again, once it is known to be done.
    assert.equal(await within(child.stop(), 1_000), 'exited')
  })

  it('stop kills a child that does not answer exit within the grace time (SIGSTOP)', async () => {
    const child = await spawnRaw()
    process.kill(child.pid as number, 'SIGSTOP')
    assert.equal(await within(child.stop(500), 5_000), 'killed')
    assert.equal(child.running, false)
  })

  it('concurrent stops share one stop: a later call with a longer grace time still ends with the first', async () => {
    const child = await spawnRaw()
    process.kill(child.pid as number, 'SIGSTOP')
    // Separate stops would disagree: the second would report the first's kill as 'exited'.
    assert.deepEqual(await within(Promise.all([child.stop(500), child.stop(60_000)]), 3_000), ['killed', 'killed'])
    assert.equal(child.running, false)
  })

  it('stop returns at once for a child already ended by kill()', async () => {
    const child = await spawnRaw()
    await child.kill()
    assert.equal(await within(child.stop(), 1_000), 'exited')
  })

  it('a child that could not be spawned counts as ended: its calls fail, stop returns', async () => {
    // taskset is looked up on this PATH, where nothing is.
    const child = new Child('roles/raw.js', ['client'], { PATH: '/nonexistent' }, { cpu: 0 })
    children.push(child)
    await assert.rejects(child.callWithin({ cmd: 'cpu' }, 5_000), /exited \(code null\)/)
    assert.equal(await within(child.stop(), 1_000), 'exited')
    assert.equal(child.running, false)
  })
})
