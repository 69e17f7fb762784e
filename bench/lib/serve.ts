/**
 * The role side of the JSON-line protocol (`lib/child.ts` is the orchestrator side): one
 * command per stdin line, one JSON answer per stdout line, `{ error }` when the handler throws.
 */
import { createInterface } from 'node:readline'

export async function serveCommands (handle: (msg: any) => Promise<unknown>): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    let reply: unknown
    try {
      reply = await handle(JSON.parse(line))
    } catch (err) {
      reply = { error: (err as Error).message }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
}
