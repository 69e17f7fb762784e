/**
 * The `Range` request header (RFC 9110, section 14), for one range of bytes.
 *
 * - `bytes=A-B`, `bytes=A-` and `bytes=-N` (the last N bytes) are understood.
 * - A range unit other than `bytes` is ignored (RFC 9110 14.2: MUST ignore), as is a list of
 *   several ranges (a server MAY ignore Range): the whole value is sent, 200.
 * - A `bytes=` header that does not parse is rejected: 400, so a client's mistake is named
 *   rather than answered with the whole value.
 * - A range that selects nothing of the value (first byte at or past its end, a zero-length
 *   suffix, any range of an empty value) is unsatisfiable: 416 with `Content-Range: bytes *\/SIZE`.
 */

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'range', start: number, end: number }
  | { kind: 'unsatisfiable' }
  | { kind: 'malformed', reason: string }

const SPEC = /^(\d*)-(\d*)$/

/** Interprets `header` for a value of `size` bytes. `end` is inclusive, as in Content-Range. */
export function parseRange (header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' }
  const text = header.trim()
  const eq = text.indexOf('=')
  if (eq < 0) return { kind: 'malformed', reason: 'a Range header is UNIT=RANGES, e.g. bytes=0-99' }
  if (text.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' }
  const specs = text.slice(eq + 1).split(',').map(s => s.trim())
  for (const spec of specs) {
    if (!SPEC.test(spec) || spec === '-') return { kind: 'malformed', reason: `${JSON.stringify(spec.slice(0, 40))} is not a byte range (bytes=FIRST-LAST, FIRST- or -SUFFIX)` }
  }
  if (specs.length > 1) return { kind: 'none' }
  const [, a, b] = SPEC.exec(specs[0]) as RegExpExecArray
  if (a === '') {
    const suffix = Number(b)
    if (!Number.isSafeInteger(suffix)) return { kind: 'malformed', reason: 'range number too large' }
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(a)
  const last = b === '' ? Infinity : Number(b)
  if (!Number.isSafeInteger(start) || (b !== '' && !Number.isSafeInteger(last))) return { kind: 'malformed', reason: 'range number too large' }
  if (last < start) return { kind: 'malformed', reason: `range ${specs[0]} ends before it starts` }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'range', start, end: Math.min(last, size - 1) }
}
