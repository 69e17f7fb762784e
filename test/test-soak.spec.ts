/**
 * A 10-second load soak in the suite: the same `runSoak` as `npm run soak` (bench/soak.ts), with
 * 50 Locals in this process and the real `dstore global` binary in a child process, a 70/30
 * get/put mix of values from 100 B to 4 MiB. No operation may fail, every get must return the
 * bytes that were put, and the Global's memory must stay bounded. Throughput is reported, not
 * asserted.
 */
import { strict as assert } from 'node:assert'
import { runSoak, type SoakResult } from '../bench/soak.js'

describe('soak (10 s, 50 Locals, one Global process)', function () {
  this.timeout(60_000)
  let r: SoakResult

  before(async function () {
    r = await runSoak({ seconds: 10, locals: 50 })
  })

  it('completes a non-trivial number of gets and puts without a single error', function () {
    assert.equal(r.errorCount, 0, `errors:\n${r.errors.map(e => `${e.op} ${e.cid ?? ''}: ${e.name}: ${e.message}`).join('\n')}`)
    assert.equal(r.globalExitCode, 0, 'the Global stops cleanly afterwards')
    assert.ok(r.ops.gets >= 200 && r.ops.puts >= 100, `only ${r.ops.gets} gets and ${r.ops.puts} puts in ${r.durationS} s`)
    assert.equal(r.ops.total, r.ops.gets + r.ops.puts)
    assert.ok(r.timeline.filter(s => s.ops > 0).length >= 8, 'operations complete throughout the run, not in a burst')
  })

  it('checks every get against the value put, both from a Local cache and cold from the Global', function () {
    assert.equal(r.ops.getsVerified, r.ops.gets)
    assert.ok(r.ops.getsHit > 0 && r.ops.getsCold > 0, `hits ${r.ops.getsHit}, cold ${r.ops.getsCold}`)
    assert.equal(r.latencyMs.get.count, r.ops.gets)
    assert.equal(r.latencyMs.getHit.count + r.latencyMs.getCold.count, r.ops.gets)
    assert.ok(r.ops.putsDeduplicated > 0, 'some puts were of values already stored')
  })

  it('puts values of mixed sizes, and the Global lists exactly the distinct values put', function () {
    assert.equal(r.values.listedByGlobal, r.values.distinct)
    assert.ok(r.values.sizes.min < 4096 && r.values.sizes.max > 1024 * 1024, `sizes ${JSON.stringify(r.values.sizes)}`)
  })

  it("keeps the Global's memory bounded (RSS sampled every second)", function () {
    assert.ok(r.timeline.length >= 9, `${r.timeline.length} samples`)
    assert.ok(r.timeline.every(s => s.globalRssMiB > 0), 'the Global was sampled every second')
    // Generous: it stays near 250 MiB on the 2-core CI machine, its lmdb map pages included.
    assert.ok(r.rss.globalPeakMiB < 1024, `Global peak RSS ${r.rss.globalPeakMiB} MiB`)
    assert.ok(r.rss.soakMaxMiB < 2048, `soak process RSS ${r.rss.soakMaxMiB} MiB`)
  })
})
