/**
 * `dstore repl`: the original dstore's interactive two-layer session, on one long-lived Local.
 *
 * Command words (case-insensitive) are the original's: `set|put|insert|in|i <value>`,
 * `get|select|output|out|o <cid>`, `del|delete|rem|remove|rm|d <cid>`, plus `stats`, `.help`,
 * `.version` and `.exit`. Keys are CIDs now, so SET takes only a value and prints its key, and
 * a value can't be "occupied": the same bytes always get the same key. DEL removes the value
 * from Global and from every connected Local before it answers (the original left other
 * Locals' copies for up to 5 s). Works on a terminal and on piped stdin (no prompt then).
 *
 * With `json`, every answer is one JSON document on its own line (JSON Lines): a first one
 * `{ version, peerId, global }`, then `{ op: 'set', cid, deduplicated }`, `{ op: 'get', cid,
 * from: 'local' | 'global', size, text }` (`base64` instead of `text` for bytes that are not
 * UTF-8), `{ op: 'del', cid, removed }`, `{ op: 'stats', … }`, and `{ error: { name, code,
 * message } }` for anything that failed.
 */
import { createInterface } from 'node:readline'
import { parseCID, type LocalPeer } from '../src/index.js'
import { describeError, errorJson } from './output.js'

const SET = new Set(['set', 'put', 'insert', 'in', 'i'])
const GET = new Set(['get', 'select', 'output', 'out', 'o'])
const DEL = new Set(['del', 'delete', 'rem', 'remove', 'rm', 'd'])

export const REPL_HELP = `Commands (case-insensitive):
  SET|PUT <value>   store the value on Global (and here); prints its CID
  GET|OUT <cid>     print the value, from this Local's cache ("local:") or from Global ("global:")
  DEL|REM <cid>     remove the value from Global and from every connected Local
  STATS             this Local's cache counters
  .help  .version  .exit`

/** A value in a JSON answer: `text` when it is UTF-8, `base64` otherwise. */
function asJson (bytes: Uint8Array): { text: string } | { base64: string } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) }
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') }
  }
}

/** Shows a value: as text when it is printable UTF-8, otherwise as a size. */
function show (bytes: Uint8Array): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    // eslint-disable-next-line no-control-regex
    // One trailing newline (a file's last line) would push "(Updating Local)" onto its own line.
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) return text.endsWith('\n') ? text.slice(0, -1) : text
  } catch {}
  return `<${bytes.length} bytes of binary data>`
}

/** A failure the REPL reports as a JSON error with this name and code (text mode: its message). */
function replError (name: string, code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { name, code })
}

export interface ReplOptions {
  /** Answer in JSON Lines (see the module comment). */
  json?: boolean
  /** Aborts the command in flight; the session ends (the caller closes it on Ctrl+C). */
  signal?: AbortSignal
}

export async function runRepl (local: LocalPeer, info: { version: string, global: string }, options: ReplOptions = {}): Promise<void> {
  const { json = false, signal } = options
  const interactive = process.stdin.isTTY === true
  const out = (line: string): void => { process.stdout.write(line + '\n') }
  const doc = (value: unknown): void => { out(JSON.stringify(value)) }
  if (json) {
    doc({ version: info.version, peerId: local.peerId.toString(), global: info.global })
  } else {
    out(`dstore v${info.version} (uid: ${local.peerId})`)
    out(`Connected to Global ${info.global}. Keys are the BLAKE3 CIDs of their values.`)
    out('Use `.help` for commands and `.exit` to exit the repl')
  }

  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive, prompt: json ? '' : 'db > ' })
  // A terminal in raw mode turns Ctrl+C into this event, not a signal.
  rl.on('SIGINT', () => { process.kill(process.pid, 'SIGINT') })
  signal?.addEventListener('abort', () => { rl.close() }, { once: true })
  if (interactive) rl.prompt()
  const fail = (err: unknown): void => { if (json) doc({ error: errorJson(err) }); else out(`dstore error: ${describeError(err).line}`) }
  const usage = (message: string): void => { fail(replError('UsageError', 'ERR_USAGE', message)) }
  const notFound = (): void => { fail(replError('NotFoundError', 'ERR_NOT_FOUND', "Key-Value mapping doesn't exist")) }

  for await (const raw of rl) {
    const line = raw.trim()
    if (line === '') { if (interactive) rl.prompt(); continue }
    const space = line.search(/\s/)
    const word = (space < 0 ? line : line.slice(0, space)).toLowerCase()
    const arg = space < 0 ? '' : line.slice(space).trim()
    try {
      if (word === '.exit' || word === 'exit' || word === 'quit') break
      else if (word === '.help' || word === 'help') { if (json) doc({ op: 'help', text: REPL_HELP }); else out(REPL_HELP) } else if (word === '.version') { if (json) doc({ op: 'version', version: info.version }); else out(`dstore v${info.version}`) } else if (SET.has(word)) {
        if (arg === '') { usage('SET needs a value, e.g. `SET hello`'); continue }
        let deduplicated = false
        const cid = await local.put(new TextEncoder().encode(arg), {
          signal,
          onProgress: (e) => { if (e.type === 'blob:put:deduplicated') deduplicated = true }
        })
        if (json) doc({ op: 'set', cid: cid.toString(), deduplicated })
        else out(deduplicated ? `Database updated: ${cid.toString()} (Global already had it)` : `Database updated: ${cid.toString()}`)
      } else if (GET.has(word)) {
        if (arg === '') { usage('GET needs a CID, e.g. `GET bafk…`'); continue }
        const hits = local.stats().hits
        try {
          // Echoed in base32, whatever multibase it was typed in.
          const key = parseCID(arg).toString()
          const value = await local.get(key, { signal })
          const fromCache = local.stats().hits > hits
          if (json) doc({ op: 'get', cid: key, from: fromCache ? 'local' : 'global', size: value.length, ...asJson(value) })
          else out(fromCache ? `local: ${key} -> ${show(value)}` : `global: ${key} -> ${show(value)}     (Updating Local)`)
        } catch (err) {
          if ((err as Error).name === 'NotFoundError') notFound()
          else fail(err)
        }
      } else if (DEL.has(word)) {
        if (arg === '') { usage('DEL needs a CID, e.g. `DEL bafk…`'); continue }
        const key = parseCID(arg).toString()
        const existed = await local.delete(key, { signal })
        if (json) doc({ op: 'del', cid: key, removed: existed })
        else if (existed) out('Global mapping removed! Every connected Local has dropped its copy.')
        else notFound()
      } else if (word === 'stats' || word === '.stats') {
        const s = local.stats()
        if (json) doc({ op: 'stats', ...s })
        else out(`hits: ${s.hits}, misses: ${s.misses}, evictions: ${s.evictions}, invalidations: ${s.invalidations}, cached: ${s.cacheEntries} values, ${s.cacheBytes} of ${s.cacheSize} bytes`)
      } else {
        usage('Unknown command! (try `.help`)')
      }
    } catch (err) {
      if (signal?.aborted === true) break
      fail(err)
    } finally {
      if (interactive) rl.prompt()
    }
  }
  rl.close()
}
