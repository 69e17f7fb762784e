import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { getEventListeners } from 'node:events'
import { onAbort, raceAbort } from '../src/core/abort.js'

describe('core abort', () => {
  describe('raceAbort', () => {
    it('holds one listener on a signal shared by a thousand waits, and fails them all when it aborts', async () => {
      const controller = new AbortController()
      const never = new Promise<never>(() => {})
      const waits = Array.from({ length: 1000 }, async () => await raceAbort(never, controller.signal))
      assert.equal(getEventListeners(controller.signal, 'abort').length, 1)
      controller.abort()
      const results = await Promise.allSettled(waits)
      assert.ok(results.every(r => r.status === 'rejected' && (r.reason as Error).name === 'AbortError'))
    })

    it('resolves with the promise and then no longer waits on the signal', async () => {
      const controller = new AbortController()
      const values = await Promise.all(Array.from({ length: 10 }, async (_, i) => await raceAbort(Promise.resolve(i), controller.signal)))
      assert.deepEqual(values, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      let called = 0
      onAbort(controller.signal, () => { called++ })
      controller.abort()
      // Only the wait still registered ran: the ten settled ones had cancelled theirs.
      assert.equal(called, 1)
    })
  })

  describe('onAbort', () => {
    it('runs a wait once when the signal aborts, and not once cancelled', () => {
      const controller = new AbortController()
      const ran: string[] = []
      onAbort(controller.signal, () => { ran.push('kept') })
      const cancel = onAbort(controller.signal, () => { ran.push('cancelled') })
      cancel()
      controller.abort()
      controller.abort()
      assert.deepEqual(ran, ['kept'])
    })
  })
})
