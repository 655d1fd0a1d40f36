'use strict'
// The dashboard example commands real devices, so it refuses whoever is not
// the operator: a forged cross-site request, no token, a wrong token, a
// foreign Host (DNS rebinding), a state-changing GET, a form's content
// type. Each test shows the refusal (status and reason), then that the
// server still serves a legitimate command, run by a real device (fw-1) on
// a real Mosquitto.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const { Consumer, Monitor } = require('..')
const { startBroker } = require('./helpers/broker.js')
const { startDashboard, request, listeningAddresses } = require('./dashboard-harness.js')

// The forgery of issue 20, byte for byte: what any web page can send without a preflight.
const FORGED = JSON.stringify({ action: 'allow', target: { ipv4_net: '0.0.0.0/0' }, to: ['fw-1'] })

async function until (check, what, ms = 10000) {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('the dashboard refuses whoever is not its operator', { timeout: 90000 }, () => {
  let broker
  let consumer
  let monitor
  let d // the dashboard under test, started with no options but the broker
  const ran = [] // { action, requestId } of every command fw-1 executed
  const published = [] // actions of every command seen on the broker

  before(async () => {
    broker = startBroker()
    consumer = new Consumer({ url: broker.url, deviceId: 'fw-1', profiles: ['slpf'] })
    await consumer.connect()
    consumer.serve((command, incoming) => {
      ran.push({ action: command.action, requestId: incoming.message.headers.request_id })
      return { status: 200 }
    })
    monitor = new Monitor({ url: broker.url })
    monitor.on('request', (e) => published.push(e.message.body.openc2.request.action))
    await monitor.connect()
    d = await startDashboard(broker.url)
  })

  after(async () => {
    if (d) await d.stop()
    if (monitor) await monitor.close()
    if (consumer) await consumer.close()
    if (broker) broker.stop()
  })

  const bearer = () => ({ authorization: `Bearer ${d.token}` })

  // A refusal: its status, a JSON body whose `error` says why, and the page's headers.
  function refused (t, r, status, reason) {
    t.diagnostic(`${r.status} ${r.text}`)
    assert.equal(r.status, status, r.text)
    assert.equal(r.headers['content-type'], 'application/json')
    assert.match(r.json.error, reason)
    assert.equal(r.headers['x-content-type-options'], 'nosniff')
  }

  // What the page itself sends; resolves once fw-1 has run it.
  async function stillServes () {
    const r = await request(d.port, {
      method: 'POST',
      path: '/api/send',
      headers: { ...bearer(), origin: `http://127.0.0.1:${d.port}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'deny', target: { ipv4_net: '10.0.0.0/8' }, to: ['fw-1'], timeout: 2000 })
    })
    assert.equal(r.status, 202, r.text)
    await until(() => ran.some((c) => c.requestId === r.json.requestId), 'fw-1 ran the legitimate command')
  }

  test('the start line is the URL to open, with a random token, on 127.0.0.1 only', async () => {
    assert.match(d.line, /^dashboard on http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43} watching mqtt:\/\/127\.0\.0\.1:\d+\n$/)
    assert.equal(d.host, '127.0.0.1')
    assert.deepEqual(listeningAddresses(d.port), ['127.0.0.1'])
    assert.equal(d.output().stderr, '', 'no warning on the default address')
    // Not reachable on this machine's other addresses.
    const outside = Object.values(os.networkInterfaces()).flat().find((i) => !i.internal && i.family === 'IPv4')
    if (outside) {
      await assert.rejects(new Promise((resolve, reject) => {
        const s = net.connect(d.port, outside.address, () => { s.end(); resolve() })
        s.on('error', reject)
      }), { code: 'ECONNREFUSED' })
    }
    await stillServes()
  })

  test('the forged cross-site command is refused and fw-1 never runs it', async (t) => {
    const forged = { method: 'POST', path: '/api/send', body: FORGED, headers: { origin: 'https://evil.example', 'content-type': 'text/plain' } }
    refused(t, await request(d.port, forged), 403, /^Origin "https:\/\/evil\.example" is not this dashboard \(http:\/\/127\.0\.0\.1:\d+\): cross-site requests are refused$/)
    // Even carrying the token (a browser would add a same-site cookie), a foreign Origin is refused.
    refused(t, await request(d.port, { ...forged, headers: { ...forged.headers, ...bearer() } }), 403, /^Origin "https:\/\/evil\.example" is not this dashboard/)
    // And from our own origin, text/plain still is not a command.
    refused(t, await request(d.port, { ...forged, headers: { ...bearer(), 'content-type': 'text/plain' } }), 415, /^Content-Type must be application\/json, not "text\/plain"$/)
    // A command sent after the forgeries runs; none of them did, nor reached the broker.
    await stillServes()
    assert.deepEqual(ran.filter((c) => c.action === 'allow'), [])
    assert.ok(!published.includes('allow'), `published: ${published}`)
  })

  test('no token: 401', async (t) => {
    const r = await request(d.port, { method: 'POST', path: '/api/send', headers: { 'content-type': 'application/json' }, body: FORGED })
    refused(t, r, 401, /^a token is required: open the URL with \?token= that the dashboard printed when it started, or send "Authorization: Bearer <token>"$/)
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="oc2mqtt dashboard"')
    await stillServes()
  })

  test('a wrong token: 401, whether Bearer, cookie or ?token=', async (t) => {
    const wrong = 'A'.repeat(43)
    const reason = /^the token is wrong \(a dashboard makes a new one each time it starts: use the URL it printed last\)$/
    const post = { method: 'POST', path: '/api/send', body: FORGED }
    refused(t, await request(d.port, { ...post, headers: { authorization: `Bearer ${wrong}`, 'content-type': 'application/json' } }), 401, reason)
    refused(t, await request(d.port, { ...post, headers: { cookie: `oc2mqtt-dashboard-${d.port}=${wrong}`, 'content-type': 'application/json' } }), 401, reason)
    // A prefix of the right token is still wrong.
    refused(t, await request(d.port, { ...post, headers: { authorization: `Bearer ${d.token.slice(0, -1)}`, 'content-type': 'application/json' } }), 401, reason)
    const page = await request(d.port, { path: `/?token=${wrong}` })
    refused(t, page, 401, reason)
    assert.equal(page.headers['set-cookie'], undefined)
    refused(t, await request(d.port, { path: '/', headers: { authorization: `Basic ${Buffer.from(`x:${d.token}`).toString('base64')}` } }), 401, /^the Authorization header must be "Bearer <token>"$/)
    await stillServes()
  })

  test('a foreign Host (DNS rebinding): 403, token or not', async (t) => {
    const reason = /^Host "evil\.example:\d+" is not an address of this dashboard \(127\.0\.0\.1:\d+, localhost:\d+, \[::1\]:\d+\): refused, as a page reached by DNS rebinding would send it$/
    const host = `evil.example:${d.port}`
    refused(t, await request(d.port, { path: '/', headers: { host, ...bearer() } }), 403, reason)
    refused(t, await request(d.port, { method: 'POST', path: '/api/send', headers: { host, ...bearer(), 'content-type': 'application/json' }, body: FORGED }), 403, reason)
    // localhost is this dashboard too.
    const local = await request(d.port, { path: '/', headers: { host: `localhost:${d.port}`, ...bearer() } })
    assert.equal(local.status, 200)
    await stillServes()
  })

  test('GET on the send endpoint: 405, and nothing is sent', async (t) => {
    const query = `?action=allow&target=${encodeURIComponent('{"ipv4_net":"0.0.0.0/0"}')}&to=fw-1`
    const r = await request(d.port, { path: `/api/send${query}`, headers: bearer() })
    refused(t, r, 405, /^GET is not allowed on \/api\/send: use POST$/)
    assert.equal(r.headers.allow, 'POST')
    // Nor does anything else accept a POST.
    const other = await request(d.port, { method: 'POST', path: '/events', headers: { ...bearer(), 'content-type': 'application/json' }, body: '{}' })
    refused(t, other, 405, /^POST is not allowed on \/events: use GET$/)
    await stillServes()
    assert.ok(!published.includes('allow'))
  })

  test("a form's content type: 415", async (t) => {
    const post = (type, body) => request(d.port, { method: 'POST', path: '/api/send', headers: { ...bearer(), 'content-type': type }, body })
    refused(t, await post('application/x-www-form-urlencoded', 'action=allow&to=fw-1'), 415, /^Content-Type must be application\/json, not "application\/x-www-form-urlencoded"$/)
    refused(t, await post('multipart/form-data; boundary=x', '--x--'), 415, /^Content-Type must be application\/json, not "multipart\/form-data"$/)
    refused(t, await request(d.port, { method: 'POST', path: '/api/send', headers: bearer(), body: FORGED }), 415, /^Content-Type must be application\/json, not missing$/)
    // A charset parameter is fine.
    assert.equal((await post('application/json; charset=utf-8', JSON.stringify({ action: 'deny', target: { ipv4_net: '10.0.0.0/8' }, to: ['fw-1'] }))).status, 202)
    await stillServes()
  })

  test('the page and its stream need the token; the ?token= URL trades it for a cookie', async (t) => {
    for (const p of ['/', '/index.html', '/app.js', '/style.css', '/events']) {
      refused(t, await request(d.port, { path: p }), 401, /^a token is required/)
    }
    const entry = await request(d.port, { path: `/?token=${d.token}` })
    assert.equal(entry.status, 303)
    assert.equal(entry.headers.location, '/')
    assert.deepEqual(entry.headers['set-cookie'], [`oc2mqtt-dashboard-${d.port}=${d.token}; Path=/; HttpOnly; SameSite=Strict`])
    const cookie = `oc2mqtt-dashboard-${d.port}=${d.token}`
    const page = await request(d.port, { path: '/', headers: { cookie } })
    assert.equal(page.status, 200)
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8')
    assert.match(page.text, /<script src="app\.js"><\/script>/)
    assert.equal(page.headers['content-security-policy'], "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert.equal(page.headers['x-content-type-options'], 'nosniff')
    assert.equal(page.headers['referrer-policy'], 'no-referrer')
    assert.equal(page.headers['x-frame-options'], 'DENY')
    // The stream, with the cookie as a browser sends it.
    const stream = await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: d.port, path: '/events', headers: { cookie }, agent: false }, (res) => {
        res.setEncoding('utf8')
        res.once('data', (first) => { resolve({ status: res.statusCode, type: res.headers['content-type'], first }); req.destroy() })
      })
      req.on('error', reject)
    })
    assert.deepEqual({ status: stream.status, type: stream.type }, { status: 200, type: 'text/event-stream' })
    assert.match(stream.first, /^event: snapshot\n/)
    refused(t, await request(d.port, { path: '/nothing.html', headers: { cookie } }), 404, /^\/nothing\.html not found$/)
    await stillServes()
  })

  test('each run has its own token; OC2MQTT_DASHBOARD_TOKEN fixes one, and it is not echoed', async () => {
    const other = await startDashboard(broker.url)
    const fixed = 'automation-token-0123456789'
    const pinned = await startDashboard(broker.url, { env: { OC2MQTT_DASHBOARD_TOKEN: fixed } })
    try {
      assert.notEqual(other.token, d.token)
      assert.match(pinned.line, /^dashboard on http:\/\/127\.0\.0\.1:\d+\/ \(token from OC2MQTT_DASHBOARD_TOKEN\) watching /)
      assert.ok(!pinned.output().stdout.includes(fixed))
      assert.equal((await request(pinned.port, { path: '/', headers: { authorization: `Bearer ${fixed}` } })).status, 200)
      assert.equal((await request(pinned.port, { path: '/', headers: { authorization: `Bearer ${d.token}` } })).status, 401)
    } finally {
      await other.stop()
      await pinned.stop()
    }
    await assert.rejects(startDashboard(broker.url, { env: { OC2MQTT_DASHBOARD_TOKEN: 'short' } }), (e) => {
      assert.equal(e.code, 2)
      assert.equal(e.stderr, 'dashboard: OC2MQTT_DASHBOARD_TOKEN is too short (5 characters; at least 16)\n')
      return true
    })
  })

  test('another address only when asked, with a warning', async () => {
    const wide = await startDashboard(broker.url, { args: ['--host', '0.0.0.0'] })
    try {
      assert.deepEqual(listeningAddresses(wide.port), ['0.0.0.0'])
      assert.match(wide.output().stderr, /^dashboard: warning: listening on 0\.0\.0\.0, not only on this machine: whoever can reach it and learns the token can command your devices/)
      assert.equal(wide.host, os.hostname())
      assert.equal((await request(wide.port, { path: '/', headers: { authorization: `Bearer ${wide.token}` } })).status, 200)
    } finally {
      await wide.stop()
    }
  })

  test("the README's curl example sends a command", async () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
    const curl = /```\n(curl -H "Authorization: Bearer \$TOKEN"[\s\S]*?)```/.exec(readme)[1]
    const out = execFileSync('bash', ['-c', curl.replaceAll('127.0.0.1:8080', `127.0.0.1:${d.port}`)], { env: { ...process.env, TOKEN: d.token }, encoding: 'utf8' })
    const { requestId } = JSON.parse(out)
    await until(() => ran.some((c) => c.requestId === requestId), 'fw-1 ran the README command')
  })

  test('the token appears nowhere but the start line', async () => {
    const { stdout, stderr } = d.output()
    assert.equal(stdout, d.line)
    assert.ok(!stderr.includes(d.token))
  })
})
