/**
 * Parses a rate given on the command line (`dstore global --max-egress`) into bytes per second.
 *
 * A number, then an optional unit, then an optional `/s`:
 * - bytes: none or `B` (`5000000`, `5000000B`), SI prefixes `K`/`M`/`G`/`T` with or without `B`
 *   (`5MB`, `5M`, `1G`: powers of 1000), binary ones with `i` (`5MiB`, `1Gi`: powers of 1024);
 * - bits: `bit`, `bits` or `bps` after a prefix or none (`40Mbit`, `40Mbps`, `1Gbit/s`), as link
 *   speeds are quoted; 8 bits a byte.
 * A lone lower-case `b` after a prefix (`5Mb`) is refused: it means bits to some and bytes to others.
 */

const PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }
const BINARY: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Bytes per second, or a sentence saying what is wrong with `value` (it follows commander's "argument … is invalid."). */
export function parseRate (value: string): number | string {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)(i?)([A-Za-z]*)(\/s)?$/.exec(value.trim())
  if (m == null) return 'Expected bytes per second: a number with an optional unit, such as 5000000, 5MB, 5MiB, 40Mbit or 1G'
  const [, num, prefix, binary, unit] = m
  let bits: boolean
  if (unit === '' || unit === 'B') bits = false
  else if (/^(bit|bits|bps)$/i.test(unit)) bits = true
  else if (unit === 'b') return `Ambiguous unit: write ${num}${prefix}${binary}bit for bits or ${num}${prefix}${binary}B for bytes`
  else return `Unknown unit "${unit}": use B, KB, MB, GB, KiB, MiB, GiB, or bit, Kbit, Mbit, Gbit`
  if (binary !== '' && prefix === '') return 'An "i" needs K, M, G or T before it (5MiB)'
  const scale = binary !== '' ? BINARY[prefix.toLowerCase()] : PREFIX[prefix.toLowerCase()]
  const rate = Math.floor(Number(num) * scale / (bits ? 8 : 1))
  if (!Number.isSafeInteger(rate)) return 'Too large'
  return rate
}
