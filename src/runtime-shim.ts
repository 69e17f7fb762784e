/**
 * Runtime shim for Node 20.19+.
 *
 * libp2p 3 (through it-queue, mortice and the noise handshake) calls `Promise.withResolvers`,
 * which Node ships only from v22. This is the one polyfill dstore carries. Every entry point
 * (`src/index.ts`, the CLI, benchmarks) imports this module first, so it runs before any libp2p
 * module is evaluated. It does nothing on Node 22 and later.
 */

interface WithResolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => WithResolvers<T> }

if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T> (this: PromiseConstructor): WithResolvers<T> {
      let resolve!: WithResolvers<T>['resolve']
      let reject!: WithResolvers<T>['reject']
      const promise = new this<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

export {}
