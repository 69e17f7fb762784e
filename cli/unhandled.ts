/**
 * What a daemon does with a promise rejection nothing handled: it logs it, with its stack and
 * cause, and goes on serving everyone else. Such a rejection is one stream's failure inside a
 * library (a daemon of a swarm benchmark once died of "StreamStateError: Cannot write to a
 * stream that is closed" with no hint of where); Node's default would take every other peer's
 * transfers down with it, and say nothing of where it came from.
 */
export function keepServingOnUnhandled (log: (line: string) => void): void {
  process.on('unhandledRejection', (reason: unknown) => {
    log(`unhandled rejection (this daemon keeps serving): ${describe(reason)}`)
  })
}

function describe (reason: unknown): string {
  if (!(reason instanceof Error)) return String(reason)
  const cause = reason.cause instanceof Error ? `; cause: ${reason.cause.stack ?? reason.cause.message}` : ''
  return `${reason.stack ?? `${reason.name}: ${reason.message}`}${cause}`
}
