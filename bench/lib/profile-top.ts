/**
 * Reads a V8 `.cpuprofile` and prints its functions by self time (the share of samples in
 * which each was on top), as the profiling scripts show a role's profile.
 */
import { readFile } from 'node:fs/promises'

interface ProfileNode { callFrame: { functionName: string, url: string, lineNumber: number }, hitCount: number }

/** Prints `title`, the busy share, and the `top` functions of the profile at `file` by self time. */
export async function printTopSelf (file: string, title: string, top: number): Promise<void> {
  const p = JSON.parse(await readFile(file, 'utf8')) as { nodes: ProfileNode[], startTime: number, endTime: number }
  const self = new Map<string, number>()
  for (const n of p.nodes) {
    const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, '')
    const key = `${n.callFrame.functionName === '' ? '(anon)' : n.callFrame.functionName} ${url}:${n.callFrame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + n.hitCount)
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = self.get('(idle) :0') ?? 0
  console.log(`\n${title} (${file}): ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms, ${(100 - 100 * idle / total).toFixed(0)}% busy; top self time:`)
  for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${(100 * v / total).toFixed(1).padStart(5)}%  ${k}`)
}
