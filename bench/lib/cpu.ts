/**
 * CPU use during a bench run, from /proc: the processes we started (utime + stime of
 * /proc/PID/stat) and the whole machine (/proc/stat), sampled on a timer, so a run can show that
 * the cores were not its bottleneck. Figures are in cores (1 = one core busy the whole time).
 */
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

let ticksPerSecond: number | undefined

/** Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know). */
function hz (): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** CPU seconds a process has used (user + system), or undefined once it has gone. */
export function processCpuSeconds (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces and parentheses): state is field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(rest[11]) + Number(rest[12])) / hz() // utime (14), stime (15)
  } catch {
    return undefined
  }
}

/** Busy CPU seconds of the whole machine since boot (everything but idle and iowait), and the core count. */
function machineBusySeconds (): { busy: number, cores: number } {
  const lines = readFileSync('/proc/stat', 'utf8').split('\n')
  const f = lines[0].trim().split(/\s+/).slice(1).map(Number)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0) // user … steal (guest is inside user)
  return { busy: (total - f[3] - f[4]) / hz(), cores: lines.filter(l => /^cpu\d/.test(l)).length }
}

export interface CpuFigures {
  /** The machine's cores (the limit). */
  cores: number
  /** Our processes: mean cores over the run, and the highest over any ~1 s window. */
  procsMean: number
  procsPeak: number
  /** The whole machine (other work included): the same two. */
  machineMean: number
  machinePeak: number
  /** Seconds covered. */
  seconds: number
}

interface Sample { t: number, procs: number, machine: number }

/**
 * Samples every `intervalMs` until `stop()`. Processes that exit keep the CPU time they had at
 * their last sample (a process's time cannot be read once it is gone).
 */
export class CpuSampler {
  private readonly samples: Sample[] = []
  private readonly last = new Map<number, number>()
  private readonly timer: NodeJS.Timeout
  private readonly cores: number

  constructor (private readonly pids: () => number[], private readonly intervalMs = 250) {
    this.cores = machineBusySeconds().cores
    this.sample()
    this.timer = setInterval(() => { this.sample() }, intervalMs)
    // A run that throws before stop() must not be kept alive by the sampler.
    this.timer.unref()
  }

  private sample (): void {
    for (const pid of this.pids()) {
      const s = processCpuSeconds(pid)
      if (s !== undefined) this.last.set(pid, s)
    }
    let procs = 0
    for (const s of this.last.values()) procs += s
    this.samples.push({ t: performance.now() / 1000, procs, machine: machineBusySeconds().busy })
  }

  stop (): CpuFigures {
    clearInterval(this.timer)
    this.sample()
    const s = this.samples
    const first = s[0]
    const lastS = s[s.length - 1]
    const seconds = lastS.t - first.t
    const window = Math.max(1, Math.round(1000 / this.intervalMs))
    let procsPeak = 0
    let machinePeak = 0
    for (let i = window; i < s.length; i++) {
      const dt = s[i].t - s[i - window].t
      if (dt <= 0) continue
      procsPeak = Math.max(procsPeak, (s[i].procs - s[i - window].procs) / dt)
      machinePeak = Math.max(machinePeak, (s[i].machine - s[i - window].machine) / dt)
    }
    return {
      cores: this.cores,
      procsMean: seconds > 0 ? (lastS.procs - first.procs) / seconds : 0,
      procsPeak,
      machineMean: seconds > 0 ? (lastS.machine - first.machine) / seconds : 0,
      machinePeak,
      seconds
    }
  }
}
