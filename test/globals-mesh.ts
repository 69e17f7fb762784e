/**
 * Several real Globals on 127.0.0.1 in this process, serving ONE store instance, each listing
 * the others as peer Globals (a full mesh), for the several-Globals tests.
 */
import { createGlobal, type GlobalPeer, type GlobalOptions } from '../src/index.js'
import type { GlobalStore } from '../src/core/store/interface.js'
import { repoPeerId } from '../src/peers/identity.js'
import { freePort } from './proc.js'
import type { Cleanup } from './net.js'

/**
 * The store, shared: each Global closes its store when it stops, so the Globals get a view
 * whose close() does nothing (the test closes the store itself at the end).
 */
export function sharedStore (store: GlobalStore): GlobalStore {
  return new Proxy(store, {
    get (target, prop) {
      if (prop === 'close') return async () => {}
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

/** One Global of a mesh: what it takes to start (or restart) it with the same identity, port and peers. */
export interface MeshMember {
  id: string
  repo: string
  port: number
  /** Its dialable address, with its /p2p/ id. */
  addr: string
  peer?: GlobalPeer
  start: () => Promise<GlobalPeer>
  stop: () => Promise<void>
}

/**
 * Starts `n` Globals on one store. `peerAddr(i, j)` may replace the address member i knows
 * member j by (a dead port: a partition between the two); default the real one.
 */
export async function startMesh (c: Cleanup, store: GlobalStore, n: number, options: {
  extra?: Partial<GlobalOptions>
  peerAddr?: (i: number, j: number, real: string) => string
} = {}): Promise<MeshMember[]> {
  const members: MeshMember[] = []
  for (let i = 0; i < n; i++) {
    const repo = await c.dir(`dstore-mesh-${i}-`)
    const id = await repoPeerId(repo, 'global')
    const port = await freePort()
    members.push({ id, repo, port, addr: `/ip4/127.0.0.1/tcp/${port}/p2p/${id}`, start: undefined as any, stop: undefined as any })
  }
  members.forEach((m, i) => {
    const peers = members.flatMap((o, j) => j === i ? [] : [options.peerAddr?.(i, j, o.addr) ?? o.addr])
    m.start = async () => {
      m.peer = await createGlobal({
        repo: m.repo, listen: [`/ip4/127.0.0.1/tcp/${m.port}`], sync: false, store: sharedStore(store), peerGlobals: peers, evictTimeout: 2000, ...options.extra
      })
      return m.peer
    }
    m.stop = async () => { await m.peer?.stop(); m.peer = undefined }
    c.add(async () => { await m.stop() })
  })
  for (const m of members) await m.start()
  return members
}
