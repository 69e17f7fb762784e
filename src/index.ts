/**
 * dstore: a content-addressed, two-layer blob store.
 */
import './runtime-shim.js'

export * from './core/errors.js'
export * from './core/cid.js'
