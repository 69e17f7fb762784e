/**
 * Where the CLI finds things: the repository folder and the Global to talk to.
 *
 * Repository: `--repo`, then `$DSTORE_REPO`, then `~/.dstore`.
 * Global: `--global MULTIADDR` (repeatable: several Globals, grouped by `/p2p/` id), then `$DSTORE_GLOBAL`, then `<repo>/global.addr` (written by
 * `dstore global`), so on one machine `dstore global` in one terminal and `dstore put` in
 * another just work.
 */
import { mkdir, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { UsageError } from './output.js'

export function resolveRepo (flag?: string): string {
  const dir = flag ?? process.env.DSTORE_REPO ?? join(homedir(), '.dstore')
  return resolve(dir)
}

/** The Global's multiaddrs, with the place they came from (for error messages). */
/** The Globals named by `--global` (repeatable), else by `$DSTORE_GLOBAL`; undefined when neither names one. */
export function namedGlobal (flag: string | string[] | undefined): { addrs: string[], source: string } | undefined {
  const flags = (Array.isArray(flag) ? flag : flag != null ? [flag] : []).filter(f => f !== '')
  if (flags.length > 0) return { addrs: flags, source: '--global' }
  const env = process.env.DSTORE_GLOBAL
  if (env != null && env.trim() !== '') return { addrs: env.split(/[\s,]+/).filter(Boolean), source: 'DSTORE_GLOBAL' }
  return undefined
}

export async function resolveGlobal (flag: string | string[] | undefined, repo: string): Promise<{ addrs: string[], source: string }> {
  const named = namedGlobal(flag)
  if (named !== undefined) return named
  const file = join(repo, 'global.addr')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new UsageError(`no Global to talk to: start one with \`dstore global\`, or pass --global MULTIADDR (or set DSTORE_GLOBAL); ${file} does not exist`, 1)
  }
  const addrs = text.split('\n').map(l => l.trim()).filter(l => l !== '')
  if (addrs.length === 0) throw new UsageError(`${file} is empty: restart \`dstore global\` or pass --global MULTIADDR`, 1)
  return { addrs, source: file }
}

/**
 * Creates the repository folder (and its parents) if missing. `mkdir({ recursive: true })`
 * reports ENOENT for a folder it cannot create on a read-only file system; this creates one
 * level at a time, so the error carries the real errno (EROFS, EACCES) and path.
 */
export async function makeRepo (repo: string): Promise<void> {
  const missing: string[] = []
  for (let dir = repo; ; dir = dirname(dir)) {
    try {
      await stat(dir)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dir === dirname(dir)) throw err
      missing.unshift(dir)
    }
  }
  for (const dir of missing) {
    try {
      await mkdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
}
