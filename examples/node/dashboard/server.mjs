#!/usr/bin/env node
// A live OpenC2 dashboard: a small HTTP server on the oc2mqtt package.
//
//   node dashboard/server.mjs --url mqtt://127.0.0.1:1883 [--port 8080]
//        [--host 127.0.0.1] [--allowed-host localhost:9000 ...]
//        [--pairing-window 30000]
//
// A Monitor watches oc2/# and every event goes to the browsers over
// Server-Sent Events (GET /events); a Producer sends the commands of the
// page's form (POST /api/send). Both are the package's public API, and so
// are the connection events behind the page's broker light. The page
// (public/) needs no build step. `--pairing-window` (ms) is how long a
// command's responders are awaited before they are reported missing.
//
// It commands devices, so it is locked by default (access.mjs): it listens
// on 127.0.0.1 only, and every request needs the token of this run, printed
// once at start as the URL to open (or fixed by OC2MQTT_DASHBOARD_TOKEN).

import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { Monitor, Producer } from 'oc2mqtt'
import { Access, SECURITY_HEADERS, TOKEN_ENV, allowedHosts, authority, isLoopback, isWildcard, newToken, tokenProblem } from './access.mjs'

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    'allowed-host': { type: 'string', multiple: true, default: [] },
    id: { type: 'string', default: `dashboard-${process.pid}` },
    'pairing-window': { type: 'string', default: '30000' }
  }
})

const fixedToken = process.env[TOKEN_ENV] || undefined
if (fixedToken !== undefined && tokenProblem(fixedToken)) {
  console.error(`dashboard: ${tokenProblem(fixedToken)}`)
  process.exit(2)
}
const token = fixedToken ?? newToken()
if (!/^[1-9]\d{0,8}$/.test(o['pairing-window'])) {
  console.error(`dashboard: --pairing-window must be a whole number of milliseconds (1 to 999999999), not ${JSON.stringify(o['pairing-window'])}`)
  process.exit(2)
}
let access // set once the port is known

const PUBLIC = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public')
const KEEP = 200 // exchanges and errors kept for pages that connect later
const HISTORY = 120 // seconds of the chart

// --- what the page shows ---------------------------------------------------
//
// Everything about an exchange comes from the Monitor: the responders still
// awaited and the deadline as soon as the command is seen (`pairing`), each
// response once (the core shows a publish seen on several topics once),
// completion, and the responders that never answered. The server only keeps
// the last of it for pages that connect later, and counts per second.

const exchanges = new Map() // requestId -> exchange view, oldest first
const errors = []
const devices = new Map() // device id -> what was last seen of it
const history = [] // one bucket a second: the chart
const recent = [] // [arrival, latency ms] of the last minute's responses
let lastMinute = { p50: null, p95: null, n: 0 }
const clients = new Set()
let bucket = newBucket(Date.now())

// The broker as each of the server's two connections sees it.
const broker = {
  url: o.url,
  monitor: { state: 'connecting', since: Date.now(), down: null, detail: null },
  producer: { state: 'connecting', since: Date.now(), down: null, detail: null }
}

function broadcast (event, data) {
  const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
  for (const res of clients) res.write(frame)
}

function exchangeFor (requestId) {
  let x = exchanges.get(requestId)
  if (x === undefined) {
    x = { requestId, at: null, from: null, to: null, topic: null, command: null, warnings: [], responses: [], state: null, awaiting: [], deadline: null, missing: [] }
    exchanges.set(requestId, x)
    if (exchanges.size > KEEP) exchanges.delete(exchanges.keys().next().value)
  }
  return x
}

function addError (e) {
  errors.push(e)
  if (errors.length > KEEP) errors.shift()
  broadcast('problem', e)
}

function deviceFor (id) {
  let d = devices.get(id)
  if (d === undefined) {
    d = { id, lastSeen: null, lastCommand: null, lastCommandAt: null, lastStatus: null, lastStatusText: null, latencyMs: null, missedAt: null }
    devices.set(id, d)
  }
  return d
}

const describe = (command) => command ? `${command.action} ${Object.keys(command.target ?? {})[0] ?? ''}`.trim() : null

// The pairing of the event replaces what the exchange showed.
function pair (x, pairing) {
  x.state = pairing.state
  x.awaiting = pairing.awaiting
  x.deadline = pairing.deadline
}

function newBucket (now) {
  return { t: Math.floor(now / 1000) * 1000, requests: 0, responses: 0, errors: 0, latencies: [] }
}

// Nearest rank: the smallest value with at least p of them at or below it.
function percentile (sorted, p) {
  return sorted.length === 0 ? null : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]
}

function tick () {
  const now = Date.now()
  const sorted = bucket.latencies.sort((a, b) => a - b)
  const done = { t: bucket.t, requests: bucket.requests, responses: bucket.responses, errors: bucket.errors, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: percentile(sorted, 1) }
  history.push(done)
  if (history.length > HISTORY) history.shift()
  bucket = newBucket(now)
  let old = 0
  while (old < recent.length && recent[old][0] < now - 60000) old++
  recent.splice(0, old)
  const minute = recent.map(([, ms]) => ms).sort((a, b) => a - b)
  lastMinute = { p50: percentile(minute, 0.5), p95: percentile(minute, 0.95), n: minute.length }
  broadcast('tick', { now, bucket: done, lastMinute })
  // A broadcast is open to anyone until its deadline, and the Monitor says
  // nothing when that passes (nobody is missing): show the window as over.
  // (Addressed commands end with the Monitor's 'unanswered' or complete.)
  for (const x of exchanges.values()) {
    if (x.state === 'open' && x.awaiting.length === 0 && x.deadline !== null && x.deadline < now) {
      Object.assign(x, { state: 'closed', deadline: null })
      broadcast('exchange', x)
    }
  }
}

// --- the broker side ---------------------------------------------------------

const monitor = new Monitor({ url: o.url, pairingWindowMs: Number(o['pairing-window']) })
const producer = new Producer({ url: o.url, id: o.id })

// Connection events (the package's, with mqtt.js's names): what the page's
// broker light shows.
for (const [name, role] of [['monitor', monitor], ['producer', producer]]) {
  const set = (state, detail) => {
    const was = broker[name]
    // `down`: since when it has not been connected (null while it is).
    const down = state === 'connected' ? null : (was.down ?? Date.now())
    broker[name] = { state, since: Date.now(), down, detail }
    broadcast('broker', broker)
  }
  role.on('connect', (e) => { broker.url = e.broker; set('connected', `MQTT ${e.mqttVersion}`) })
  role.on('offline', (e) => set('offline', e.reason))
  role.on('reconnect', (e) => set('reconnecting', `attempt ${e.attempt}`))
  // A failed attempt (the next 'reconnect' follows).
  role.on('error', (e) => set(broker[name].state === 'connected' ? 'connected' : 'reconnecting', `attempt ${e.attempt ?? '?'} failed: ${e.message}`))
  role.on('end', () => set('closed', null))
}

monitor.on('request', (e) => {
  bucket.requests++
  const command = e.message.body.openc2.request
  for (const id of e.to ?? []) {
    const d = deviceFor(id)
    Object.assign(d, { lastCommand: describe(command), lastCommandAt: e.receivedAt })
    broadcast('device', d)
  }
  if (e.warnings.length > 0) addError({ at: e.receivedAt, kind: 'warning', text: `${e.topic}: ${e.warnings.join('; ')}`, requestId: e.requestId })
  if (e.requestId === null) return
  const x = exchangeFor(e.requestId)
  Object.assign(x, { at: e.receivedAt, from: e.from, to: e.to, topic: e.topic, command, warnings: e.warnings })
  pair(x, e.pairing)
  broadcast('exchange', x)
})

monitor.on('response', (e) => {
  bucket.responses++
  if (e.latencyMs !== null) {
    bucket.latencies.push(e.latencyMs)
    recent.push([e.receivedAt, e.latencyMs])
    if (recent.length > 100000) recent.shift()
  }
  const rsp = e.message.body.openc2.response
  const x = e.requestId === null ? null : exchangeFor(e.requestId)
  if (e.from !== null) {
    const d = deviceFor(e.from)
    Object.assign(d, { lastSeen: e.receivedAt, lastStatus: e.status, lastStatusText: rsp.status_text ?? null, latencyMs: e.latencyMs })
    if (x?.command) d.lastCommand = describe(x.command)
    broadcast('device', d)
  }
  if (e.warnings.length > 0) addError({ at: e.receivedAt, kind: 'warning', text: `${e.topic}: ${e.warnings.join('; ')}`, requestId: e.requestId })
  if (e.status >= 400) {
    bucket.errors++
    addError({ at: e.receivedAt, kind: `status ${e.status}`, text: `${e.from ?? '?'} answered ${e.status}${rsp.status_text ? `: ${rsp.status_text}` : ''}`, requestId: e.requestId })
  }
  if (x === null) return
  x.responses.push({ at: e.receivedAt, from: e.from, status: e.status, statusText: rsp.status_text ?? null, results: rsp.results ?? null, latencyMs: e.latencyMs })
  // A response to a command not seen (or long gone) keeps what the exchange showed.
  if (e.pairing.state !== null || x.state === null) pair(x, e.pairing)
  broadcast('exchange', x)
})

monitor.on('unanswered', (e) => {
  const x = exchangeFor(e.requestId)
  Object.assign(x, { state: 'unanswered', awaiting: [], deadline: null, missing: e.missing })
  broadcast('exchange', x)
  const now = Date.now()
  for (const id of e.missing) {
    const d = deviceFor(id)
    d.missedAt = now
    broadcast('device', d)
  }
  bucket.errors++
  addError({ at: now, kind: 'unanswered', text: `${e.missing.join(', ')} never answered${x.command ? ` ${describe(x.command)}` : ''}`, requestId: e.requestId })
})

monitor.on('undecodable', (e) => {
  bucket.errors++
  addError({ at: e.receivedAt, kind: e.error.code, text: `${e.topic}: ${e.error.message}`, payload: e.payload.toString('utf8').slice(0, 200) })
})

async function send (body) {
  const command = { action: body.action, target: body.target }
  if (body.args && Object.keys(body.args).length > 0) command.args = body.args
  const to = (body.to ?? []).filter((t) => t.length > 0)
  const exchange = producer.send(command, { to: to.length > 0 ? to : undefined, profile: body.profile || undefined, timeout: Number(body.timeout) || 5000 })
  const requestId = await exchange.sent()
  // What it brings is shown from the Monitor, as for any producer's command.
  exchange.collect().catch((e) => addError({ at: Date.now(), kind: e.code ?? 'Error', text: e.message, requestId }))
  return requestId
}

// --- HTTP ----------------------------------------------------------------------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }

async function readJson (req) {
  let text = ''
  for await (const chunk of req) {
    text += chunk
    if (text.length > 65536) throw Object.assign(new Error('request too large'), { status: 413 })
  }
  const body = JSON.parse(text)
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('the body must be a JSON object')
  return body
}

function reply (res, status, body, headers = {}) {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function refuse (res, refusal) {
  reply(res, refusal.status, { error: refusal.error }, refusal.headers)
}

const PAGES = new Set(['index.html', 'app.js', 'style.css'])

async function handle (req, res) {
  const site = access.checkSite(req.headers)
  if (site) return refuse(res, site)
  const { pathname, searchParams } = new URL(req.url, 'http://dashboard.invalid')

  // The URL printed at start: trade its token for a cookie, then drop it
  // from the address bar (and so from what the page could leak).
  if (req.method === 'GET' && pathname === '/' && searchParams.has('token')) {
    const wrong = access.checkGiven(searchParams.get('token'))
    if (wrong) return refuse(res, wrong)
    res.writeHead(303, { ...SECURITY_HEADERS, location: '/', 'set-cookie': access.setCookie(token) })
    return res.end()
  }

  const auth = access.checkToken(req.headers)
  if (auth) return refuse(res, auth)

  if (pathname === '/api/send') {
    if (req.method !== 'POST') return reply(res, 405, { error: `${req.method} is not allowed on /api/send: use POST` }, { allow: 'POST' })
    const json = access.checkJson(req.headers)
    if (json) return refuse(res, json)
    let body
    try {
      body = await readJson(req)
    } catch (e) {
      return reply(res, e.status ?? 400, { error: `invalid request: ${e.message}` })
    }
    try {
      return reply(res, 202, { requestId: await send(body) })
    } catch (e) {
      // TypeError: the form sent something of the wrong shape; OC2_*: the command itself.
      return reply(res, 400, { error: e.message, code: e.code ?? null })
    }
  }

  const name = pathname === '/' ? 'index.html' : pathname.slice(1)
  if (pathname !== '/events' && !PAGES.has(name)) return reply(res, 404, { error: `${pathname.slice(0, 100)} not found` })
  // Nothing but /api/send changes state, and it is POST only.
  if (req.method !== 'GET') return reply(res, 405, { error: `${req.method} is not allowed on ${pathname}: use GET` }, { allow: 'GET' })

  if (pathname === '/events') {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' })
    const snapshot = { now: Date.now(), pairingWindowMs: monitor.pairingWindowMs, broker, exchanges: [...exchanges.values()], errors, devices: [...devices.values()], history, lastMinute }
    res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`)
    clients.add(res)
    req.on('close', () => clients.delete(res))
    return
  }
  const body = await readFile(path.join(PUBLIC, name))
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': TYPES[path.extname(name)] })
  res.end(body)
}

const server = createServer((req, res) => {
  handle(req, res).catch((e) => {
    if (!res.headersSent) reply(res, 500, { error: e.message })
    else res.end()
  })
})

await monitor.connect()
await producer.connect()
const ticker = setInterval(tick, 1000)
if (!isLoopback(o.host)) {
  console.error(`dashboard: warning: listening on ${o.host}, not only on this machine: whoever can reach it and learns the token can command your devices, and plain HTTP carries the token in clear. The default (127.0.0.1, with an SSH tunnel for remote use) is safer.`)
}
server.listen(Number(o.port), o.host, () => {
  const { port } = server.address()
  const machine = [os.hostname(), ...Object.values(os.networkInterfaces()).flat().map((i) => i.address)]
  access = new Access({ token, hosts: allowedHosts(o.host, port, { machine, extra: o['allowed-host'] }), cookie: `oc2mqtt-dashboard-${port}` })
  const base = `http://${authority(isWildcard(o.host) ? os.hostname() : o.host, port)}/`
  // The only place the token is ever written: the URL to open, as Jupyter does.
  // A fixed token is the operator's to keep: it is not echoed.
  const open = fixedToken === undefined ? `${base}?token=${token}` : `${base} (token from ${TOKEN_ENV})`
  console.log(`dashboard on ${open} watching ${o.url}`)
})

async function shutdown () {
  clearInterval(ticker)
  for (const res of clients) res.end()
  server.close()
  await producer.close()
  await monitor.close()
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
