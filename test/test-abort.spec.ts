import '../src/runtime-shim.js'
import { strict as assert } from 'node:assert'
import { getEventListeners } from 'node:events'
import { setImmediate as turn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { linkSignals, onAbort, raceAbort } from '../src/core/abort.js'

/** A full garbage collection, without needing node's --expose-gc on the command line. */
const gc: () => void = (() => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()

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

    it('keeps nothing a finished wait resolved with reachable from a long-lived signal, the first wait\'s included', async () => {
      // A signal that outlives its calls, as the CLI's and the bench roles' do. The first wait
      // on a signal once stayed reachable from its listener, and with it the value it raced.
      const controller = new AbortController()
      const race = async (): Promise<WeakRef<Uint8Array>> =>
        new WeakRef(await raceAbort(Promise.resolve(new Uint8Array(1024)), controller.signal))
      const refs = [await race(), await race(), await race()]
      await turn()
      gc()
      assert.deepEqual(refs.map(r => r.deref() === undefined), [true, true, true])
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'no listener once no wait is left')
    })

    it('resolves with the promise when it settles first', async () => {
      const controller = new AbortController()
      const values = await Promise.all(Array.from({ length: 10 }, async (_, i) => await raceAbort(Promise.resolve(i), controller.signal)))
      assert.deepEqual(values, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    })
  })

  describe('onAbort', () => {
    it('removes its one listener once no wait is left, and adds it again for the next wait', () => {
      const { signal } = new AbortController()
      const listeners = (): number => getEventListeners(signal, 'abort').length
      const cancels = Array.from({ length: 20 }, () => onAbort(signal, () => {}))
      assert.equal(listeners(), 1)
      for (const cancel of cancels.slice(1)) cancel()
      assert.equal(listeners(), 1, 'one wait is left')
      cancels[0]()
      cancels[0]()
      assert.equal(listeners(), 0)
      const again = onAbort(signal, () => {})
      assert.equal(listeners(), 1)
      again()
      assert.equal(listeners(), 0)
    })

    it('does not run a wait that an earlier one cancelled during the abort, and runs the rest in order', () => {
      const controller = new AbortController()
      const ran: string[] = []
      let cancelSecond = (): void => {}
      onAbort(controller.signal, () => { ran.push('first'); cancelSecond() })
      cancelSecond = onAbort(controller.signal, () => { ran.push('second') })
      onAbort(controller.signal, () => { ran.push('third') })
      controller.abort()
      assert.deepEqual(ran, ['first', 'third'])
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
    })

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

    it('runs every wait when one of them throws, and the error is still thrown (uncaught)', async () => {
      const controller = new AbortController()
      const ran: string[] = []
      onAbort(controller.signal, () => { ran.push('first'); throw new Error('boom') })
      onAbort(controller.signal, () => { ran.push('second') })
      // mocha's own handlers are set aside while the error is awaited, and put back whatever happens.
      const saved = process.listeners('uncaughtException')
      process.removeAllListeners('uncaughtException')
      let onError: ((err: Error) => void) | undefined
      let timer: NodeJS.Timeout | undefined
      try {
        const uncaught = new Promise<Error>((resolve, reject) => {
          onError = resolve
          process.once('uncaughtException', onError)
          timer = setTimeout(() => { reject(new Error('the throwing wait\'s error was swallowed')) }, 2000)
        })
        controller.abort()
        assert.deepEqual(ran, ['first', 'second'])
        assert.equal((await uncaught).message, 'boom')
      } finally {
        clearTimeout(timer)
        if (onError !== undefined) process.removeListener('uncaughtException', onError)
        for (const l of saved) process.on('uncaughtException', l)
      }
    })
  })
  describe('linkSignals', () => {
    it('aborts with the reason of whichever of its signals aborts first, and clear() detaches it from all of them', () => {
      const a = new AbortController()
      const b = new AbortController()
      const linked = linkSignals(a.signal, undefined, b.signal)
      assert.equal(linked.signal.aborted, false)
      b.abort('b first')
      assert.equal(linked.signal.reason, 'b first')
      a.abort('a later')
      assert.equal(linked.signal.reason, 'b first')
      const c = new AbortController()
      const cleared = linkSignals(c.signal)
      assert.equal(getEventListeners(c.signal, 'abort').length, 1)
      cleared.clear()
      assert.equal(getEventListeners(c.signal, 'abort').length, 0)
      c.abort()
      assert.equal(cleared.signal.aborted, false, 'cleared, so not followed')
      const d = new AbortController()
      const ended = linkSignals(d.signal)
      ended.end()
      assert.equal(ended.signal.aborted, true, 'end() aborts the linked signal')
      assert.equal(getEventListeners(d.signal, 'abort').length, 0, 'and detaches it')
      assert.equal(d.signal.aborted, false, 'not its sources')
    })

    it('is aborted at once when one of its signals already is, and leaves no listener on the others', () => {
      const live = new AbortController()
      const linked = linkSignals(live.signal, AbortSignal.abort('already'))
      assert.equal(linked.signal.aborted, true)
      assert.equal(linked.signal.reason, 'already')
      assert.equal(getEventListeners(live.signal, 'abort').length, 0)
    })
  })
})
