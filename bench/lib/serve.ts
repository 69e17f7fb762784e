/**
 * The role side of the JSON-line protocol (`lib/child.ts` is the orchestrator side): one
 * command per stdin line, one JSON answer per stdout line, `{ error }` when the handler throws.
 */
import { createInterface } from 'node:readline'

export async function serveCommands (handle: (msg: any) => Promise<unknown>): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    let reply: unknown
    try {
      const msg = JSON.parse(line)
      // Every role answers `cpu`: CPU time (user + system, all threads) this process has used, in ms.
      if (msg?.cmd === 'cpu') {
        const u = process.cpuUsage()
        reply = { cpuMs: (u.user + u.system) / 1000 }
      } else {
        reply = await handle(msg)
      }
    } catch (err) {
      reply = { error: (err as Error).message }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
}
