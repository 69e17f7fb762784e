/**
 * Per-operation S3 counters, kept by a middleware on each client: for each SDK command name
 * (`PutObject`, `GetObject`, `HeadObject`, ...) how many calls were made, how many failed
 * (after retries) and how many retries were sent. A 404 is counted as `notFound`, not as an
 * error: `has` and `stat` of a missing blob are normal answers.
 */

/** Counters of one S3 operation. */
export interface S3OpStats {
  /** Calls of the operation (each may take several HTTP attempts). */
  requests: number
  /** Calls that failed after their retries, 404s excepted. */
  errors: number
  /** Calls answered 404 (a missing key). */
  notFound: number
  /** HTTP attempts beyond each call's first (throttling, 5xx, network failures). */
  retries: number
}

/** Counters by operation name. */
export type S3Stats = Record<string, S3OpStats>

/** One client's counters, and the process-wide totals. */
export class S3StatsRecorder {
  private readonly ops = new Map<string, S3OpStats>()

  constructor (private readonly parent?: S3StatsRecorder) {}

  /** Records one finished call of `op` that took `attempts` HTTP attempts. */
  record (op: string, attempts: number, outcome: 'ok' | 'error' | 'notFound'): void {
    let s = this.ops.get(op)
    if (s == null) {
      s = { requests: 0, errors: 0, notFound: 0, retries: 0 }
      this.ops.set(op, s)
    }
    s.requests++
    s.retries += Math.max(0, attempts - 1)
    if (outcome === 'error') s.errors++
    if (outcome === 'notFound') s.notFound++
    this.parent?.record(op, attempts, outcome)
  }

  /** A copy of the counters, operations sorted by name. */
  snapshot (): S3Stats {
    const out: S3Stats = {}
    for (const op of [...this.ops.keys()].sort()) out[op] = { ...this.ops.get(op)! }
    return out
  }
}

/** Every client of this process together. */
export const processStats = new S3StatsRecorder()
