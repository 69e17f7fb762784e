/**
 * `dstore global --max-egress`: the rate parser (cli/rate.ts) and the real binary refusing a bad
 * rate in one line, or starting capped (its banner and --json say so).
 */
import { strict as assert } from 'node:assert'
import { parseRate } from '../cli/rate.js'
import { ONE_LINE, dstore, startGlobal, stopGlobal } from './proc.js'
import { tempDir } from './helpers.js'

describe('dstore global --max-egress', function () {
  this.timeout(60_000)

  describe('parseRate', () => {
    const good: Array<[string, number]> = [
      ['1000000', 1_000_000], ['5000000B', 5_000_000], ['5MB', 5_000_000], ['5M', 5_000_000], ['5mB', 5_000_000],
      ['5MiB', 5 * 1024 * 1024], ['1.5MiB', 1.5 * 1024 * 1024], ['64KiB', 65_536], ['64Ki', 65_536], ['1G', 1e9], ['1GB/s', 1e9], ['2Gi', 2 * 1024 ** 3],
      ['40Mbit', 5_000_000], ['1Gbit/s', 125_000_000], ['800kbit', 100_000], [' 7 MB ', 7_000_000]
    ]
    for (const [text, rate] of good) {
      it(`reads ${JSON.stringify(text)} as ${rate} bytes/s`, () => { assert.equal(parseRate(text), rate) })
    }
    for (const text of ['', 'abc', '5Mb', '40Mbps', '5XB', '5i', '-5MB', '5 MB/h', '1e6', '9999999999999999999T', '1000', '64K']) {
      it(`refuses ${JSON.stringify(text)} (a usage error)`, () => {
        assert.throws(() => parseRate(text), (err: Error) => err.name === 'CommanderError' || err.constructor.name === 'InvalidArgumentError')
      })
    }
  })

  describe('the binary', () => {
    for (const bad of ['5Mb', 'fast', '1000']) {
      it(`refuses --max-egress ${bad}: one dstore: line, exit 2 (ERR_USAGE with --json)`, async () => {
        const dir = await tempDir()
        try {
          const r = await dstore(['global', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off', '--max-egress', bad])
          assert.equal(r.code, 2)
          assert.match(r.stderr, ONE_LINE)
          assert.match(r.stderr, /--max-egress/)
          const j = await dstore(['global', '--json', '--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', 'off', '--max-egress', bad])
          assert.equal(j.code, 2)
          assert.equal(JSON.parse(j.stderr).error.code, 'ERR_USAGE')
        } finally {
          await dir.cleanup()
        }
      })
    }

    it('starts capped: the banner names the rate, and --help lists the flag', async () => {
      const dir = await tempDir()
      try {
        const g = await startGlobal(['--repo', dir.path, '--listen', '/ip4/127.0.0.1/tcp/0', '--max-egress', '40Mbit'])
        const out = await stopGlobal(g)
        assert.match(out.stdout, /^Egress: at most .* \(5000000 bytes\/s\)/m)
        const help = await dstore(['global', '--help'])
        assert.match(help.out, /--max-egress <rate>/)
      } finally {
        await dir.cleanup()
      }
    })
  })
})
