/**
 * The role side of the JSON-line protocol (`lib/child.ts` is the orchestrator side): one
 * command per stdin line, one JSON answer per stdout line, `{ error }` when the handler throws.
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { createInterface } from 'node:readline'

/** The main thread's CPU profiler, between `profile-start` and `profile-stop`. */
let profiler: Session | undefined

/**
 * `profile-start` / `profile-stop { path }`: a V8 CPU profile of this process's main thread
 * over just the commands in between (what `--cpu-prof` gives for the whole life of the process),
 * written as a `.cpuprofile` for Chrome DevTools.
 */
async function profile (msg: { cmd: string, path?: string }): Promise<unknown> {
  if (msg.cmd === 'profile-start') {
    profiler = new Session()
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 })
    await profiler.post('Profiler.start')
    return { ok: true }
  }
  if (profiler == null) throw new Error('profile-stop without profile-start')
  const { profile } = await profiler.post('Profiler.stop')
  profiler.disconnect()
  profiler = undefined
  if (msg.path !== undefined) await writeFile(msg.path, JSON.stringify(profile))
  return { ok: true }
}

export async function serveCommands (handle: (msg: any) => Promise<unknown>): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    let reply: unknown
    try {
      const msg = JSON.parse(line)
      // Every role answers `cpu`: CPU time (user + system, all threads) this process has used, in ms.
      if (msg?.cmd === 'cpu') {
        const u = process.cpuUsage()
        reply = { cpuMs: (u.user + u.system) / 1000 }
      } else if (msg?.cmd === 'profile-start' || msg?.cmd === 'profile-stop') {
        reply = await profile(msg)
      } else {
        reply = await handle(msg)
      }
    } catch (err) {
      reply = { error: (err as Error).message }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
}
