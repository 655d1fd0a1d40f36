#!/usr/bin/env node
// A live OpenC2 dashboard: a small HTTP server on the oc2mqtt package.
//
//   node dashboard/server.mjs --url mqtt://127.0.0.1:1883 [--port 8080]
//        [--host 127.0.0.1] [--allowed-host localhost:9000 ...]
//
// A Monitor watches oc2/# and every event goes to the browsers over
// Server-Sent Events (GET /events); a Producer sends the commands of the
// page's form (POST /api/send). The page (public/) needs no build step.
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
    id: { type: 'string', default: `dashboard-${process.pid}` }
  }
})

const fixedToken = process.env[TOKEN_ENV] || undefined
if (fixedToken !== undefined && tokenProblem(fixedToken)) {
  console.error(`dashboard: ${tokenProblem(fixedToken)}`)
  process.exit(2)
}
const token = fixedToken ?? newToken()
let access // set once the port is known

const PUBLIC = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public')
const KEEP = 200 // exchanges and errors kept for pages that connect later

// --- what the page shows ---------------------------------------------------

const exchanges = new Map() // requestId -> exchange view, oldest first
const errors = []
const clients = new Set()

function broadcast (event, data) {
  const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
  for (const res of clients) res.write(frame)
}

function exchangeFor (requestId) {
  let x = exchanges.get(requestId)
  if (x === undefined) {
    x = { requestId, at: null, from: null, to: null, topic: null, command: null, responses: [], missing: [], complete: null }
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

// --- the broker side ---------------------------------------------------------

const monitor = new Monitor({ url: o.url })
const producer = new Producer({ url: o.url, id: o.id })

monitor.on('request', (e) => {
  if (e.requestId === null) return
  const x = exchangeFor(e.requestId)
  Object.assign(x, { at: e.receivedAt, from: e.from, to: e.to, topic: e.topic, command: e.message.body.openc2.request })
  broadcast('exchange', x)
})

monitor.on('response', (e) => {
  const rsp = e.message.body.openc2.response
  if (e.requestId === null) return
  const x = exchangeFor(e.requestId)
  // The same response arrives on oc2/rsp and oc2/rsp/<producer>: show it once.
  const seen = x.responses.some((r) => r.from === e.from && r.status === e.status && r.statusText === (rsp.status_text ?? null))
  if (seen) return
  x.responses.push({ from: e.from, status: e.status, statusText: rsp.status_text ?? null, results: rsp.results ?? null, latencyMs: e.latencyMs })
  broadcast('exchange', x)
  if (e.status >= 400) addError({ at: e.receivedAt, kind: `status ${e.status}`, text: `${e.from ?? '?'} answered ${e.status}${rsp.status_text ? `: ${rsp.status_text}` : ''}`, requestId: e.requestId })
})

monitor.on('unanswered', (e) => {
  const x = exchangeFor(e.requestId)
  x.missing = e.missing
  broadcast('exchange', x)
})

monitor.on('undecodable', (e) => {
  addError({ at: e.receivedAt, kind: e.error.code, text: `${e.topic}: ${e.error.message}`, payload: e.payload.toString('utf8').slice(0, 200) })
})

async function send (body) {
  const command = { action: body.action, target: body.target }
  if (body.args && Object.keys(body.args).length > 0) command.args = body.args
  const to = (body.to ?? []).filter((t) => t.length > 0)
  const exchange = producer.send(command, { to: to.length > 0 ? to : undefined, profile: body.profile || undefined, timeout: Number(body.timeout) || 5000 })
  const requestId = await exchange.sent()
  exchange.collect().then((s) => {
    const x = exchangeFor(requestId)
    x.complete = s.complete
    x.missing = s.missing
    broadcast('exchange', x)
  }, (e) => addError({ at: Date.now(), kind: e.code ?? 'Error', text: e.message, requestId }))
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
    res.write(`event: snapshot\ndata: ${JSON.stringify({ broker: o.url, exchanges: [...exchanges.values()], errors })}\n\n`)
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
  for (const res of clients) res.end()
  server.close()
  await producer.close()
  await monitor.close()
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
