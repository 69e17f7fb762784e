/** Reading Prometheus text in tests. */
import { strict as assert } from 'node:assert'

/**
 * Prometheus text, parsed: every series (`name{labels}`) and its value. Throws on a line that is
 * neither a comment nor a sample. (prom-client writes NaN as `Nan`; Prometheus parses floats
 * with Go's ParseFloat, which takes any case.)
 */
export function parseProm (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      if (line.startsWith('#')) assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /, `comment line: ${line}`)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]Inf)( -?[0-9]+)?$/.exec(line)
    assert.ok(m !== null, `not a comment or a sample: ${JSON.stringify(line)}`)
    out.set(m[1], Number(m[2]))
  }
  return out
}
