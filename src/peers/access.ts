/**
 * Who may read from and write to a Global.
 *
 * - Writers (PUT, DELETE) are the PeerIds given with `allowWriters` plus those in the
 *   repository's `allow-writers` file. With neither, writes are open only while Global listens
 *   on loopback alone; a Global listening anywhere else refuses to start unless the operator
 *   asks for open writes explicitly (`insecureOpenWrites`).
 * - Readers (GET, STAT, LIST) are open to every peer unless `allowReaders` or an
 *   `allow-readers` file names some; then only those peers and the writers may read.
 * - The files are re-read by {@link AccessControl.reload} (the CLI calls it on SIGHUP). A file
 *   that does not parse is refused as a whole: at start Global does not start, on reload the
 *   previous lists stay in force.
 *
 * The PeerId checked is the connection's remote peer, the identity proven by the connection's
 * encryption handshake (TLS 1.3 or noise), so it cannot be claimed without the peer's key.
 *
 * File format: one PeerId per line; `#` starts a comment; blank lines are ignored.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { ConfigError, PermissionDeniedError } from '../core/errors.js'

export type Access = 'read' | 'write'

/** File names, in the repository folder. */
export const WRITERS_FILE = 'allow-writers'
export const READERS_FILE = 'allow-readers'

export interface AccessOptions {
  /** Repository folder holding the optional `allow-writers` and `allow-readers` files. */
  repo: string
  /** The addresses Global listens on (to decide whether open writes are safe). */
  listen: string[]
  allowWriters?: string[]
  allowReaders?: string[]
  insecureOpenWrites?: boolean
  log?: (line: string) => void
}

/** What is in force: `undefined` means "not restricted". */
export interface AccessLists {
  writers: ReadonlySet<string> | undefined
  readers: ReadonlySet<string> | undefined
}

/** Parses one PeerId (a base58btc `12D3…`/`Qm…` or CID form); throws ConfigError naming `where`. */
export function parsePeerId (text: string, where: string): string {
  try {
    return peerIdFromString(text).toString()
  } catch (err) {
    throw new ConfigError(`${where}: "${text}" is not a PeerId (${(err as Error).message})`)
  }
}

/** Reads a list file: undefined when it does not exist. */
async function readListFile (path: string): Promise<string[] | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  const ids: string[] = []
  text.split('\n').forEach((line, i) => {
    const entry = line.replace(/#.*/, '').trim()
    if (entry !== '') ids.push(parsePeerId(entry, `${path}:${i + 1}`))
  })
  return ids
}

/** Whether every listen address is on a loopback interface (127.0.0.0/8, ::1, localhost). */
export function loopbackOnly (listen: string[]): boolean {
  return listen.length > 0 && listen.every(addr => {
    const first = multiaddr(addr).getComponents()[0]
    if (first == null) return false
    if (first.name === 'ip4') return first.value?.startsWith('127.') === true
    if (first.name === 'ip6') return first.value === '::1' || first.value === '0:0:0:0:0:0:0:1'
    if (first.name === 'dns' || first.name === 'dns4' || first.name === 'dns6') return first.value === 'localhost'
    return false
  })
}

/** Refusals remembered (so as to log each peer once) before the memory is cleared. */
const MAX_LOGGED = 1000

/** The allow-lists of one Global, checked on every request. */
export class AccessControl {
  private lists: AccessLists = { writers: undefined, readers: undefined }
  /** Refusals already logged (peer and access), so a retrying peer does not flood the log. */
  private readonly logged = new Set<string>()

  private constructor (private readonly options: AccessOptions) {}

  /** Loads the lists and checks the configuration is safe; throws ConfigError otherwise. */
  static async load (options: AccessOptions): Promise<AccessControl> {
    const access = new AccessControl(options)
    access.lists = await access.read('refusing to start')
    return access
  }

  /**
   * Re-reads the list files. On error (a file that does not parse, or no writer list left on a
   * Global that may not have open writes) the lists in force stay as they were. Reloads run one
   * at a time, in the order asked, so the last one asked decides.
   */
  async reload (): Promise<AccessLists> {
    const next = this.reloading.then(async () => {
      this.lists = await this.read('refusing to reload')
      this.logged.clear()
      return this.lists
    })
    this.reloading = next.catch(() => {})
    return await next
  }

  private reloading: Promise<unknown> = Promise.resolve()

  /** The lists the options and files say now, checked for safety. */
  private async read (refusing: string): Promise<AccessLists> {
    const { repo, listen } = this.options
    const [fileWriters, fileReaders] = await Promise.all([
      readListFile(join(repo, WRITERS_FILE)),
      readListFile(join(repo, READERS_FILE))
    ])
    const writers = combine(this.options.allowWriters, fileWriters, 'allow-writer')
    const readers = combine(this.options.allowReaders, fileReaders, 'allow-reader')
    if (writers === undefined && !loopbackOnly(listen) && this.options.insecureOpenWrites !== true) {
      throw new ConfigError(
        `${refusing}: Global listens on ${listen.join(', ')}, which is not loopback-only, and has no writer allow-list, ` +
        `so anyone who can reach it could write and delete. Name the writers with --allow-writer PEERID or in ${join(repo, WRITERS_FILE)} ` +
        '(an empty file allows nobody), or pass --insecure-open-writes to accept that.')
    }
    return { writers, readers }
  }

  get current (): AccessLists { return this.lists }

  /** Whether `peer` may `access`. */
  allows (peer: string, access: Access): boolean {
    const { writers, readers } = this.lists
    if (access === 'write') return writers === undefined || writers.has(peer)
    // Writers may read: a peer trusted to change the store is trusted to see it.
    return readers === undefined || readers.has(peer) || writers?.has(peer) === true
  }

  /** Throws PermissionDeniedError (logging the first refusal of each peer and access) unless allowed. */
  check (peer: string, access: Access): void {
    if (this.allows(peer, access)) return
    const key = `${access} ${peer}`
    if (!this.logged.has(key)) {
      // Bounded: a peer that comes back under ever new keys may be logged again, not grow this.
      if (this.logged.size >= MAX_LOGGED) this.logged.clear()
      this.logged.add(key)
      this.options.log?.(`refused ${access} access to ${peer} (not on the ${access === 'write' ? 'writer' : 'reader'} allow-list); further refusals of this peer are not logged`)
    }
    throw new PermissionDeniedError(`this peer (${peer}) may not ${access === 'write' ? 'write to' : 'read from'} this Global`)
  }
}

function combine (given: string[] | undefined, fromFile: string[] | undefined, flag: string): ReadonlySet<string> | undefined {
  if (given === undefined && fromFile === undefined) return undefined
  const ids = new Set<string>()
  for (const id of given ?? []) ids.add(parsePeerId(id, `--${flag}`))
  for (const id of fromFile ?? []) ids.add(id)
  return ids
}
