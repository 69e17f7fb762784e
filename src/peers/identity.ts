/**
 * Persistent peer identities. A peer's Ed25519 key lives in its repository folder, so its
 * PeerId (and with a fixed port, its multiaddr) survives restarts. The key file is created
 * with mode 0600, written to a temp file first and renamed, so a crash never leaves a
 * half-written key; an unreadable or corrupt key is an error, never silently replaced.
 */
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
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
  await mkdir(dir, { recursive: true })
  const key = await generateKeyPair('Ed25519')
  const tmp = `${path}.tmp-${process.pid}`
  try {
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.writeFile(privateKeyToProtobuf(key))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await chmod(tmp, 0o600)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw new StorageError(`cannot write identity key ${path}: ${(err as Error).message}`, { cause: err })
  }
  return key
}
