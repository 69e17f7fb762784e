/**
 * `dstore repl`: the original dstore's interactive two-layer session, on one long-lived Local.
 *
 * Command words (case-insensitive) are the original's: `set|put|insert|in|i <value>`,
 * `get|select|output|out|o <cid>`, `del|delete|rem|remove|rm|d <cid>`, plus `stats`, `.help`,
 * `.version` and `.exit`. Keys are CIDs now, so SET takes only a value and prints its key, and
 * a value can't be "occupied": the same bytes always get the same key. DEL removes the value
 * from Global and from every connected Local before it answers (the original left other
 * Locals' copies for up to 5 s). Works on a terminal and on piped stdin (no prompt then).
 */
import { createInterface } from 'node:readline'
import type { LocalPeer } from '../src/index.js'
import { describeError } from './output.js'

const SET = new Set(['set', 'put', 'insert', 'in', 'i'])
const GET = new Set(['get', 'select', 'output', 'out', 'o'])
const DEL = new Set(['del', 'delete', 'rem', 'remove', 'rm', 'd'])

export const REPL_HELP = `Commands (case-insensitive):
  SET|PUT <value>   store the value on Global (and here); prints its CID
  GET|OUT <cid>     print the value, from this Local's cache ("local:") or from Global ("global:")
  DEL|REM <cid>     remove the value from Global and from every connected Local
  STATS             this Local's cache counters
  .help  .version  .exit`

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

export async function runRepl (local: LocalPeer, info: { version: string, global: string }): Promise<void> {
  const interactive = process.stdin.isTTY === true
  const out = (line: string): void => { process.stdout.write(line + '\n') }
  out(`dstore v${info.version} (uid: ${local.peerId})`)
  out(`Connected to Global ${info.global}. Keys are the BLAKE3 CIDs of their values.`)
  out('Use `.help` for commands and `.exit` to exit the repl')

  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive, prompt: 'db > ' })
  if (interactive) rl.prompt()
  const fail = (err: unknown): void => { out(`dstore error: ${describeError(err).line}`) }

  for await (const raw of rl) {
    const line = raw.trim()
    if (line === '') { if (interactive) rl.prompt(); continue }
    const space = line.search(/\s/)
    const word = (space < 0 ? line : line.slice(0, space)).toLowerCase()
    const arg = space < 0 ? '' : line.slice(space).trim()
    try {
      if (word === '.exit' || word === 'exit' || word === 'quit') break
      else if (word === '.help' || word === 'help') out(REPL_HELP)
      else if (word === '.version') out(`dstore v${info.version}`)
      else if (SET.has(word)) {
        if (arg === '') { out('dstore error: SET needs a value, e.g. `SET hello`'); continue }
        let deduplicated = false
        const cid = await local.put(new TextEncoder().encode(arg), {
          onProgress: (e) => { if (e.type === 'blob:put:deduplicated') deduplicated = true }
        })
        out(deduplicated ? `Database updated: ${cid.toString()} (Global already had it)` : `Database updated: ${cid.toString()}`)
      } else if (GET.has(word)) {
        if (arg === '') { out('dstore error: GET needs a CID, e.g. `GET bafk…`'); continue }
        const hits = local.stats().hits
        try {
          const value = await local.get(arg)
          const fromCache = local.stats().hits > hits
          out(fromCache ? `local: ${arg} -> ${show(value)}` : `global: ${arg} -> ${show(value)}     (Updating Local)`)
        } catch (err) {
          if ((err as Error).name === 'NotFoundError') out("dstore error: Key-Value mapping doesn't exist")
          else fail(err)
        }
      } else if (DEL.has(word)) {
        if (arg === '') { out('dstore error: DEL needs a CID, e.g. `DEL bafk…`'); continue }
        const existed = await local.delete(arg)
        if (existed) out('Global mapping removed! Every connected Local has dropped its copy.')
        else out("dstore error: Key-Value mapping doesn't exist")
      } else if (word === 'stats' || word === '.stats') {
        const s = local.stats()
        out(`hits: ${s.hits}, misses: ${s.misses}, evictions: ${s.evictions}, invalidations: ${s.invalidations}, cached: ${s.cacheEntries} values, ${s.cacheBytes} of ${s.cacheSize} bytes`)
      } else {
        out('dstore error: Unknown command! (try `.help`)')
      }
    } catch (err) {
      fail(err)
    } finally {
      if (interactive) rl.prompt()
    }
  }
  rl.close()
}
