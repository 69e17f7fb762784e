/** The HTTP section of docs/BENCHMARKS.md, from bench/results/http.json (`bench/http.ts`). */
import type { HttpBenchResult } from '../http.js'
import { fig, num, table } from './report.js'

export function httpSection (r: HttpBenchResult): string {
  const ok = (pass: boolean): string => pass ? 'met' : '**missed**'
  const rows = [
    ['warm 256 MiB GET, curl from the Local daemon (cached)', `${fig(r.warmBig.curl)} MB/s`, '≥ 1000 MB/s', ok(r.warmBig.curl.median >= 1000)],
    ['cold 256 MiB GET, curl through a fresh daemon (Local → Global over libp2p)', `${fig(r.coldBig.daemonCurl)} MB/s`, '', ''],
    ['cold 256 MiB `Local.cat` in a fresh Local (the reference)', `${fig(r.coldBig.localCat)} MB/s`, '', ''],
    ['cold 256 MiB `Local.get` in a fresh Local (fills its cache, as the daemon does)', r.coldBig.localGet === undefined ? '–' : `${fig(r.coldBig.localGet)} MB/s`, '', ''],
    ['cold GET through the daemon / `Local.cat`', `${num(r.coldBig.ratio)}×`, '≥ 0.90×', ok(r.coldBig.ratio >= 0.9)],
    [`100-byte GET, cold (${r.small.n} values, sequential, keep-alive)`, `p50 ${num(r.small.cold.p50)} ms, p99 ${num(r.small.cold.p99)} ms`, '', ''],
    ['100-byte GET, warm', `p50 ${num(r.small.warm.p50)} ms, p99 ${num(r.small.warm.p99)} ms`, '', ''],
    [`warm 1 KiB GETs, autocannon, ${r.rps.connections} connections × ${r.rps.seconds} s`, `${fig(r.rps.requestsPerSec)} req/s (p99 ${num(r.rps.p99Ms)} ms; errors ${r.rps.errors}, non-2xx ${r.rps.non2xx})`, '≥ 10,000 req/s', ok(r.rps.requestsPerSec.median >= 10_000)]
  ]
  return `\n## HTTP: the Local daemon (\`npm run bench -- --only http\`${r.quick ? ' --quick' : ''}, ${r.date.slice(0, 10)})\n\n` +
    `Every process on 127.0.0.1 of one ${r.machine.cpus}-core machine (${r.machine.model}; load ${r.machine.load.map(l => l.toFixed(2)).join(' ')} at the end): ` +
    'a Global (TLS), a `dstore local` daemon, and each client in its own process (curl, autocannon, a Node keep-alive client, a fresh Local for the reference). ' +
    'Each cold figure uses a freshly started daemon; MB/s are 10^6 bytes per second from curl\'s own time_total (connection included); median (min–max).\n\n' +
    table(['', 'measured', 'target', ''], rows) + '\n'
}
