#!/usr/bin/env node
// A live OpenC2 dashboard: a small HTTP server on the oc2mqtt package.
//
//   node dashboard/server.mjs --url mqtt://127.0.0.1:1883 [--port 8080] [--host 127.0.0.1]
//
// A Monitor watches oc2/# and every event goes to the browsers over
// Server-Sent Events (GET /events); a Producer sends the commands of the
// page's form (POST /api/send). The page (public/) needs no build step.

import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { Monitor, Producer } from 'oc2mqtt'

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    id: { type: 'string', default: `dashboard-${process.pid}` }
  }
})

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
  return JSON.parse(text)
}

function reply (res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'GET' && req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
      res.write(`event: snapshot\ndata: ${JSON.stringify({ broker: o.url, exchanges: [...exchanges.values()], errors })}\n\n`)
      clients.add(res)
      req.on('close', () => clients.delete(res))
      return
    }
    if (req.method === 'POST' && req.url === '/api/send') {
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
    if (req.method === 'GET') {
      const name = req.url === '/' ? 'index.html' : req.url.slice(1)
      if (!/^[a-z]+\.(html|js|css)$/.test(name)) return reply(res, 404, { error: 'not found' })
      const body = await readFile(path.join(PUBLIC, name))
      res.writeHead(200, { 'content-type': TYPES[path.extname(name)] })
      return res.end(body)
    }
    reply(res, 405, { error: 'method not allowed' })
  } catch (e) {
    reply(res, e.code === 'ENOENT' ? 404 : 500, { error: e.message })
  }
})

await monitor.connect()
await producer.connect()
server.listen(Number(o.port), o.host, () => {
  const { port } = server.address()
  console.log(`dashboard on http://${o.host}:${port} watching ${o.url}`)
})

async function shutdown () {
  for (const res of clients) res.end()
  server.close()
  await producer.close()
  await monitor.close()
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
