/**
 * Several Globals through the real binary: `dstore global --peer-global` (deletes relayed; a
 * peer Global down makes `dstore rm` exit 1 with one line naming it) and clients' repeated
 * `--global` (requests spread over both, failover when one stops).
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { repoPeerId } from '../src/peers/identity.js'
import { tempDir } from './helpers.js'
import { dstore, freePort, ONE_LINE, startGlobal, stopGlobal, type Daemon } from './proc.js'

describe('CLI: several Globals', function () {
  this.timeout(60_000)
  const cleanups: Array<() => Promise<void>> = []
  after(async function () { for (const fn of cleanups.reverse()) await fn().catch(() => {}) })

  it('dstore global --peer-global: rm through A with B down exits 1, one line naming B; put/get with --global A --global B fail over', async function () {
    const dirs = await Promise.all([tempDir('dstore-gcli-a-'), tempDir('dstore-gcli-b-'), tempDir('dstore-gcli-c-')])
    cleanups.push(async () => { for (const d of dirs) await d.cleanup() })
    const [repoA, repoB, client] = dirs.map(d => d.path)
    const ids = [await repoPeerId(repoA, 'global'), await repoPeerId(repoB, 'global')]
    const ports = [await freePort(), await freePort()]
    const addr = (i: number): string => `/ip4/127.0.0.1/tcp/${ports[i]}/p2p/${ids[i]}`
    const start = async (i: number): Promise<Daemon> => await startGlobal(['--repo', i === 0 ? repoA : repoB, '--listen', `/ip4/127.0.0.1/tcp/${ports[i]}`, '--peer-global', addr(1 - i)])
    const a = await start(0)
    cleanups.push(async () => { await stopGlobal(a) })
    const b = await start(1)
    cleanups.push(async () => { await stopGlobal(b) })
    const both = ['--repo', client, '--no-daemon', '--global', addr(0), '--global', addr(1)]
    const file = join(client, 'v.bin')
    const value = randomBytes(3000)
    await writeFile(file, value)
    const put = await dstore(['put', ...both, file])
    assert.equal(put.code, 0, put.stderr + put.out)
    const cid = put.out.trim()
    const rm = await dstore(['rm', ...both, cid])
    assert.equal(rm.code, 0, rm.stderr + rm.out)

    await stopGlobal(b)
    // The stores are separate here (one per repository): A holds the value, B is gone.
    const put2 = await dstore(['put', ...both, file])
    assert.equal(put2.code, 0, `failover to A: ${put2.stderr}`)
    const get = await dstore(['get', ...both, cid])
    assert.equal(get.code, 0, get.stderr)
    assert.ok(get.stdout.equals(value))
    const rm2 = await dstore(['rm', '--repo', client, '--no-daemon', '--global', addr(0), cid])
    assert.equal(rm2.code, 1, rm2.out)
    assert.match(rm2.stderr, ONE_LINE)
    assert.match(rm2.stderr, new RegExp(ids[1]))
    assert.match(rm2.stderr, /did not confirm the eviction/)
    const has = await dstore(['has', '--repo', client, '--no-daemon', '--global', addr(0), cid])
    assert.equal(has.code, 1, 'deleted all the same')
  })

  it('dstore global --peer-global without a /p2p/ id exits 1 with one line', async function () {
    const d = await tempDir('dstore-gcli-bad-')
    cleanups.push(d.cleanup)
    const r = await dstore(['global', '--repo', d.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off', '--peer-global', '/ip4/127.0.0.1/tcp/1'])
    assert.equal(r.code, 1, r.out + r.stderr)
    assert.match(r.stderr, ONE_LINE)
    assert.match(r.stderr, /p2p/)
  })
})
