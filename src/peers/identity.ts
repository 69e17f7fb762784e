/**
 * Persistent peer identities. A peer's Ed25519 key lives in its repository folder, so its
 * PeerId (and with a fixed port, its multiaddr) survives restarts. The key file is created
 * with mode 0600, written to a temp file first and hard-linked into place, so a crash never
 * leaves a half-written key and concurrent creators agree on one key. An unreadable or corrupt
 * key is an error, never silently replaced.
 */
import { chmod, link, mkdir, open, readFile, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { StorageError } from '../core/errors.js'

/** Loads `<dir>/<name>`, creating a new key there when none exists. */
export async function loadOrCreateIdentity (dir: string, name: string): Promise<PrivateKey> {
  const path = join(dir, name)
  try {
    const bytes = await readFile(path)
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new StorageError(`identity key ${path} is corrupt: move it away to create a new identity`, { cause: err })
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof StorageError) throw err
      throw new StorageError(`cannot read identity key ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  // Unique, so a stale temp file left by a crash (even of a process with the same pid) is no obstacle.
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  let linked = false
  try {
    await mkdir(dir, { recursive: true })
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.writeFile(privateKeyToProtobuf(key))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await chmod(tmp, 0o600)
    // link, not rename: when two processes create the key at once (two CLI commands sharing a
    // repository), the first one wins and the other uses the key that won.
    try {
      await link(tmp, path)
      linked = true
    } catch (err) {
      // Another process created the key first: use that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  } catch (err) {
    throw new StorageError(`cannot write identity key ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    await rm(tmp, { force: true })
  }
  return linked ? key : await loadOrCreateIdentity(dir, name)
}

/**
 * The PeerId a Local (`role: 'local'`) or Global started on repository folder `repo` has,
 * creating its key if there is none yet. This is what a Global's allow-list names.
 */
export async function repoPeerId (repo: string, role: 'local' | 'global' = 'local'): Promise<string> {
  return peerIdFromPrivateKey(await loadOrCreateIdentity(repo, `${role}.key`)).toString()
}
