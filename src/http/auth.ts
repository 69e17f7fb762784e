/**
 * Bearer tokens for writes on an HTTP listener (docs/SECURITY.md, "HTTP"). The token is
 * compared in constant time: both sides are hashed to equal-length SHA-256 digests first, so
 * neither the comparison nor a length check says how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { ConfigError } from '../core/errors.js'

function digest (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** A checker for `Authorization` header values against `token`. */
export function bearerChecker (token: string): (authorization: string | undefined) => boolean {
  const t = token.trim()
  if (t.length === 0) throw new ConfigError('the HTTP token is empty')
  const expected = digest(t)
  return (authorization) => {
    if (authorization === undefined) return false
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization)
    // Hashed even when absent, so a malformed header takes as long as a wrong token.
    const given = digest(m === null ? '' : m[1])
    return timingSafeEqual(given, expected) && m !== null
  }
}
