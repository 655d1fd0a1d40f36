// Who may use the dashboard, decided from a request's headers alone (no I/O):
// server.mjs asks, then replies. The dashboard can command firewalls, so a
// web page the operator happens to visit must not be able to drive it:
//
// - Host must be an address this server answers on (DNS rebinding);
// - Origin, when sent, must be this dashboard (cross-site requests);
// - every request carries the per-run token, in an HttpOnly SameSite=Strict
//   cookie (set once from the `?token=` URL printed at start) or in
//   `Authorization: Bearer`;
// - what changes state is POST with `Content-Type: application/json`, which
//   a cross-site form or a "simple" fetch cannot send without a preflight.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { isIPv6 } from 'node:net'

/** The environment variable that fixes the token (automation); unset: random per run. */
export const TOKEN_ENV = 'OC2MQTT_DASHBOARD_TOKEN'

/** 256 random bits, URL- and cookie-safe. */
export function newToken () {
  return randomBytes(32).toString('base64url')
}

/** Why a fixed token is unusable, or null: it goes in URLs and cookies unencoded. */
export function tokenProblem (token) {
  if (token.length < 16) return `${TOKEN_ENV} is too short (${token.length} characters; at least 16)`
  if (!/^[A-Za-z0-9._~-]+$/.test(token)) return `${TOKEN_ENV} may only hold letters, digits and . _ ~ -`
  return null
}

export function isLoopback (host) {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

export function isWildcard (host) {
  return host === '0.0.0.0' || host === '::' || host === ''
}

/** `host:port` as it appears in a Host header or a URL. */
export function authority (host, port) {
  return `${isIPv6(host) ? `[${host}]` : host}:${port}`
}

/**
 * The Host values a browser may send to a server listening on `listen`:
 * the address itself, the loopback names when it is a loopback address,
 * `machine` (this machine's names and addresses) when it is a wildcard, and
 * whatever the operator added (`--allowed-host`, e.g. a tunnel's local end).
 */
export function allowedHosts (listen, port, { machine = [], extra = [] } = {}) {
  const names = [listen]
  if (isLoopback(listen) || isWildcard(listen)) names.push('127.0.0.1', 'localhost', '::1')
  if (isWildcard(listen)) names.push(...machine)
  const hosts = names.filter((h) => !isWildcard(h)).map((h) => authority(h, port))
  return new Set([...hosts, ...extra].map((h) => h.toLowerCase()))
}

const digest = (s) => createHash('sha256').update(s).digest()

function quoted (value) {
  return JSON.stringify(String(value).slice(0, 100))
}

export class Access {
  /**
   * `token`: the secret; `hosts`: allowedHosts(); `cookie`: the cookie's
   * name (cookies are not kept apart by port, so it should name the port).
   */
  constructor ({ token, hosts, cookie }) {
    this.tokenDigest = digest(token)
    this.hosts = hosts
    this.cookie = cookie
  }

  /** Compares in constant time: hashing first evens out the lengths too. */
  isToken (given) {
    return typeof given === 'string' && timingSafeEqual(digest(given), this.tokenDigest)
  }

  /** The Set-Cookie value that lets the browser in from now on. */
  setCookie (token) {
    return `${this.cookie}=${token}; Path=/; HttpOnly; SameSite=Strict`
  }

  /** 403 unless Host is ours and Origin, if sent, is ours; else null. */
  checkSite (headers) {
    const host = (headers.host ?? '').toLowerCase()
    if (!this.hosts.has(host)) {
      return { status: 403, error: `Host ${quoted(headers.host ?? '')} is not an address of this dashboard (${[...this.hosts].join(', ')}): refused, as a page reached by DNS rebinding would send it` }
    }
    const origin = headers.origin
    if (origin !== undefined && origin !== `http://${host}`) {
      return { status: 403, error: `Origin ${quoted(origin)} is not this dashboard (http://${host}): cross-site requests are refused` }
    }
    return null
  }

  /** 401 unless the request carries the token (Bearer first, then the cookie); else null. */
  checkToken (headers) {
    const auth = headers.authorization
    let given
    if (auth !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(auth)
      if (!m) return unauthorized('the Authorization header must be "Bearer <token>"')
      given = m[1]
    } else {
      given = cookieValue(headers.cookie, this.cookie)
    }
    if (given === undefined) {
      return unauthorized('a token is required: open the URL with ?token= that the dashboard printed when it started, or send "Authorization: Bearer <token>"')
    }
    return this.checkGiven(given)
  }

  /** 401 unless `given` (from a header, a cookie or `?token=`) is the token; else null. */
  checkGiven (given) {
    if (this.isToken(given)) return null
    return unauthorized('the token is wrong (a dashboard makes a new one each time it starts: use the URL it printed last)')
  }

  /** 415 unless the body is declared as JSON; else null. */
  checkJson (headers) {
    const type = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (type === 'application/json') return null
    return { status: 415, error: `Content-Type must be application/json, not ${type ? quoted(type) : 'missing'}` }
  }
}

function unauthorized (error) {
  return { status: 401, error, headers: { 'www-authenticate': 'Bearer realm="oc2mqtt dashboard"' } }
}

function cookieValue (header, name) {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** Headers for every response: nothing framed, sniffed, cached or referred. */
export const SECURITY_HEADERS = {
  // What public/ loads: its own script, stylesheet, /events and /api/send.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store'
}
