/**
 * `dstore global --max-egress RATE`: a rate in bytes per second, written as operators write
 * link and bandwidth figures. Byte units are decimal (kB, MB, GB: 1000ⁿ) or binary (KiB, MiB,
 * GiB: 1024ⁿ); bit units (kbit, Mbit, Gbit, as tc writes them) are decimal bits, divided by 8;
 * a plain number, or one with a prefix alone (`1G`, `5M`, `64Ki`), is bytes/s. `/s` may follow
 * the unit. An ambiguous `Mb` or `Mbps` is refused (tc reads `mbps` as megaBYTES per second,
 * most people as megabits).
 */
import { InvalidArgumentError } from 'commander'
import { MIN_EGRESS } from '../src/index.js'

// A prefix alone is bytes too (1G, 5M, 64Ki): a rate is bytes per second unless it says bit.
const BYTES: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40
}
const BITS: Record<string, number> = { bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, tbit: 1e12 / 8 }
const USAGE = 'give bytes per second: 5000000, 5MB, 5MiB, 1G, or a bit rate such as 40Mbit'

/** commander's parser for `--max-egress`: whole bytes per second, at least {@link MIN_EGRESS}. */
export function parseRate (value: string): number {
  const text = value.trim()
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)(\/s)?$/.exec(text)
  if (m === null) throw new InvalidArgumentError(USAGE)
  const [, number, unit] = m
  // "Mbps", "Mb", "kb": bits or bytes? Refused rather than guessed (bytes end in a capital B).
  if (/^[kmgt]?bps$/i.test(unit) || /^[kmgt]?b$/i.test(unit) && unit.endsWith('b')) {
    throw new InvalidArgumentError(`${text} is ambiguous (bits or bytes?): write Mbit for megabits, MB for megabytes`)
  }
  const u = unit.toLowerCase()
  const scale = BYTES[u] ?? BITS[u]
  if (scale === undefined) throw new InvalidArgumentError(`unknown unit ${JSON.stringify(unit)}; ${USAGE}`)
  const rate = Math.floor(Number(number) * scale)
  if (!Number.isSafeInteger(rate)) throw new InvalidArgumentError(`${text} is too large`)
  if (rate < MIN_EGRESS) throw new InvalidArgumentError(`${text} is ${rate} bytes/s; the lowest cap is ${MIN_EGRESS} bytes/s (64 KiB/s): below it, Locals' transfers would time out`)
  return rate
}
