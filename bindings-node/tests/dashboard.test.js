'use strict'
// The dashboard example (examples/node/dashboard) used as an operator uses
// it: a real headless Chromium (Debian's, driven by playwright-core; no
// browser download) at 1280×900, a real Mosquitto, three devices of which
// one answers late and one (fw-3) does not exist. The token at the door,
// who is awaited from the moment a command is seen and how that resolves
// (answered, or missing when the pairing window ends), completion for any
// producer's command, each response once, the chart, the device list, the
// filter, errors above the fold, the send form, a forged command refused,
// and the broker going away and coming back.
//
// Screenshots of the main states go to os.tmpdir()/oc2mqtt-dashboard/
// (paths in the test's diagnostics).

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const mqtt = require('mqtt')
const { chromium } = require('playwright-core')

const { Producer, Consumer } = require('..')
const { startBroker } = require('./helpers/broker.js')
const { startDashboard } = require('./dashboard-harness.js')

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = path.join(os.tmpdir(), 'oc2mqtt-dashboard')
const WINDOW_MS = 5000 // the dashboard's --pairing-window
const LATE_MS = 2000 // how long fw-2 takes to answer

// A page on another port of the same machine (so same-site: the browser
// sends the SameSite=Strict cookie) that tries the two forgeries a page can
// make without a preflight: a no-cors fetch and a text/plain form shaped as JSON.
function evilPage (target) {
  const html = `<!doctype html><body>
<form id="f" method="POST" action="${target}" enctype="text/plain">
<input name='{"action":"allow","target":{"ipv4_net":"0.0.0.0/0"},"to":["fw-1"],"x":"' value='"}'></form>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' },
  body: JSON.stringify({ action: 'allow', target: { ipv4_net: '0.0.0.0/0' }, to: ['fw-1'] }) })
  .finally(() => document.getElementById('f').submit())
</script></body>`
  const server = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(html) })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

describe('the dashboard as an operator uses it', { timeout: 90000 }, () => {
  let broker
  let brokerPort
  const devices = []
  let producer
  let dashboard
  let browser
  let context
  let page
  const ran = [] // `${device} ${action}` of every command a device executed

  async function shot (t, name) {
    const file = path.join(SHOTS, `${name}.png`)
    await page.screenshot({ path: file })
    t.diagnostic(`screenshot: ${file}`)
  }

  const row = (requestId) => page.locator(`tr[data-request-id="${requestId}"]`)

  // A device: fw-1 answers at once (and fails `contain`), fw-2 after LATE_MS.
  async function device (id, delay) {
    const c = new Consumer({ url: broker.url, deviceId: id, profiles: ['slpf'] })
    await c.connect()
    c.serve(async (command) => {
      ran.push(`${id} ${command.action}`)
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay))
      if (command.action === 'contain') throw new Error('cannot contain that')
      return { status: 200, status_text: `did ${command.action}` }
    })
    devices.push(c)
  }

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), 'Debian chromium is installed (make setup)')
    fs.mkdirSync(SHOTS, { recursive: true })
    broker = startBroker()
    brokerPort = broker.port
    await device('fw-1', 0)
    await device('fw-2', LATE_MS)
    producer = new Producer({ url: broker.url, id: 'soc-producer' })
    await producer.connect()
    dashboard = await startDashboard(broker.url, { args: ['--pairing-window', String(WINDOW_MS)] })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    })
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    // Anything the Content-Security-Policy blocks is a mismatch with what the page loads.
    await context.addInitScript(() => {
      window.cspViolations = []
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`))
    })
    page = await context.newPage()
  })

  after(async () => {
    if (browser) await browser.close()
    if (dashboard) await dashboard.stop()
    if (producer) await producer.close()
    for (const c of devices) await c.close()
    if (broker) broker.stop()
  })

  test('the token is required: without it, a 401 and nothing of the page', async (t) => {
    const door = await page.goto(dashboard.base)
    assert.equal(door.status(), 401)
    assert.match(await page.textContent('body'), /a token is required: open the URL with \?token= that the dashboard printed/)
    assert.equal(await page.locator('#send-form').count(), 0)
    await shot(t, '1-no-token')
  })

  test('the printed URL lets the operator in; the token moves to an HttpOnly cookie', async () => {
    const entry = await page.goto(dashboard.url)
    assert.equal(entry.status(), 200)
    assert.equal(page.url(), dashboard.base)
    assert.ok(entry.headers()['content-security-policy'].includes("frame-ancestors 'none'"))
    const cookies = await context.cookies()
    assert.deepEqual(cookies.map((c) => [c.name, c.value === dashboard.token, c.httpOnly, c.sameSite]), [[`oc2mqtt-dashboard-${dashboard.port}`, true, true, 'Strict']])
    assert.equal(await page.evaluate(() => document.cookie), '')
    await page.locator('#status.live').waitFor()
    // The light is the broker connection, not the page's link.
    await page.locator('#broker-state[data-state="connected"]').waitFor()
    assert.equal(await page.locator('#broker-state').textContent(), 'broker connected')
    assert.equal(await page.locator('#broker-url').textContent(), broker.url)
  })

  test('a missing responder is awaited from the start with a countdown, then reported missing', async (t) => {
    const sentAt = Date.now()
    // (Not `query features`, which a consumer answers itself, at once.)
    const exchange = producer.send({ action: 'deny', target: { ipv4_net: '198.51.100.0/24' } }, { to: ['fw-1', 'fw-2', 'fw-3'], timeout: WINDOW_MS + 2000 })
    const requestId = await exchange.sent()
    const pairing = row(requestId).locator('td.pairing')
    // fw-1 answers at once; fw-2 and fw-3 are awaited, with the time left.
    await page.waitForFunction((id) => /^awaiting fw-2, fw-3 [1-5] s left$/.test(document.querySelector(`tr[data-request-id="${id}"] td.pairing`)?.textContent), requestId)
    const shownAfter = Date.now() - sentAt
    t.diagnostic(`awaiting shown ${shownAfter} ms after the send (pairing window ${WINDOW_MS} ms)`)
    assert.ok(shownAfter < LATE_MS, `awaiting shown after ${shownAfter} ms`)
    assert.equal(await page.locator('#count-awaiting').textContent(), '2')
    await page.locator('#devices tr[data-device="fw-3"].awaited').waitFor()
    // fw-2 answers late: only fw-3 is left.
    await page.waitForFunction((id) => /^awaiting fw-3 [1-5] s left$/.test(document.querySelector(`tr[data-request-id="${id}"] td.pairing`)?.textContent), requestId)
    assert.equal(await row(requestId).locator('.response').count(), 2)
    await shot(t, '2-awaiting')
    // The window ends: fw-3 is missing, in the table, the problems and the device list.
    await pairing.locator('.missing').waitFor({ timeout: WINDOW_MS + 3000 })
    assert.equal(await pairing.textContent(), 'missing fw-3')
    assert.ok(Date.now() - sentAt >= WINDOW_MS)
    await page.locator('#errors li[data-kind="unanswered"]').waitFor()
    assert.match(await page.locator('#errors li[data-kind="unanswered"]').textContent(), /fw-3 never answered deny ipv4_net$/)
    await page.locator('#devices tr[data-device="fw-3"].missed').waitFor()
    assert.equal(await page.locator('#count-missing').textContent(), '1')
    assert.equal(await page.locator('#count-awaiting').textContent(), '0')
    const summary = await exchange.collect()
    assert.deepEqual(summary.missing, ['fw-3'])
    await shot(t, '3-missing')
  })

  test("another producer's command shows complete, each response once", async () => {
    const s = await producer.send({ action: 'start', target: { process: { name: 'scan' } } }, { to: ['fw-1', 'fw-2'] }).collect()
    assert.equal(s.complete, true)
    const r = row(s.requestId)
    await r.locator('td.pairing .complete').waitFor()
    assert.match(await r.textContent(), /soc-producer → fw-1, fw-2/)
    assert.equal(await r.locator('.command').textContent(), 'start process')
    // Each response arrives on oc2/rsp and oc2/rsp/soc-producer: the Monitor shows it once.
    const badges = await r.locator('.response').allTextContents()
    assert.equal(badges.length, 2, badges.join(' | '))
    assert.match(badges.find((b) => b.startsWith('fw-1')), /^fw-1: 200 did start \(\d+\.\d ms\)$/)
    assert.match(badges.find((b) => b.startsWith('fw-2')), /^fw-2: 200 did start \(\d+\.\d ms\)$/)
    // A broadcast is open to all until its window ends.
    const b = producer.send({ action: 'query', target: { features: ['profiles'] } }, { timeout: 500 })
    const broadcastId = await b.sent()
    await row(broadcastId).locator('td.pairing .awaiting', { hasText: /^open to all \d s left$/ }).waitFor()
    await b.collect()
    await row(broadcastId).locator('td.pairing', { hasText: 'window over' }).waitFor({ timeout: WINDOW_MS + 3000 })
    assert.equal(await row(broadcastId).locator('.response').count(), 2)
  })

  test('the chart counts commands and responses per second, and latency', async (t) => {
    const chart = page.locator('#rate-chart')
    const before = Number(await chart.getAttribute('data-commands'))
    for (let i = 0; i < 10; i++) await producer.send({ action: 'query', target: { features: [] } }, { to: 'fw-1' }).collect()
    await page.waitForFunction((n) => Number(document.querySelector('#rate-chart').dataset.commands) >= n, before + 10)
    const after = Number(await chart.getAttribute('data-commands'))
    t.diagnostic(`chart: ${before} then ${after} commands in view`)
    assert.ok(await chart.locator('rect.requests').count() >= 1)
    assert.ok(Number(await page.locator('#latency-chart').getAttribute('data-points')) >= 1)
    assert.ok(await page.locator('#latency-chart circle.p95').count() >= 1)
    assert.match(await page.locator('#latency-p95').textContent(), /^\d+\.\d$/)
  })

  test('errors show above the fold: a failing device and a payload that is not OpenC2', async (t) => {
    const s = await producer.send({ action: 'contain', target: { device: {} } }, { to: 'fw-1' }).collect()
    assert.equal(s.responses[0].status, 500)
    await page.locator('#errors li[data-kind="status 500"]').waitFor()
    assert.match(await page.locator('#errors li[data-kind="status 500"]').textContent(), /fw-1 answered 500: cannot contain that$/)
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
    await raw.publishAsync('oc2/cmd/all', '{"hello": "world"}', { qos: 1 })
    await raw.endAsync()
    await page.locator('#errors li[data-kind="OC2_DECODE"]').waitFor()
    assert.match(await page.locator('#errors li[data-kind="OC2_DECODE"]').textContent(), /oc2\/cmd\/all: .*unrecognised message/)
    // Without scrolling: the panel and its newest entry are in the 900 px viewport.
    const panel = await page.locator('#problems').boundingBox()
    const newest = await page.locator('#errors li').first().boundingBox()
    assert.ok(panel.y + panel.height <= 900 && newest.y + newest.height <= 900, `problems at ${JSON.stringify(panel)}`)
    assert.equal(await page.evaluate(() => window.scrollY), 0)
    assert.equal(await page.locator('#count-errors').textContent(), '3') // unanswered fw-3, 500, decode
  })

  test('the device list: last seen, last command, status and latency of each', async () => {
    const fw1 = page.locator('#devices tr[data-device="fw-1"] td')
    assert.deepEqual((await fw1.allTextContents()).slice(2, 4), ['contain device', '500'])
    assert.equal(await fw1.nth(3).getAttribute('title'), '500 cannot contain that')
    assert.match(await fw1.nth(1).textContent(), /^\d+ s ago$/)
    assert.match(await fw1.nth(4).textContent(), /^\d+\.\d ms$/)
    // fw-2 last answered the broadcast `query features`, at once (the consumer itself).
    assert.deepEqual((await page.locator('#devices tr[data-device="fw-2"] td').allTextContents()).slice(2, 4), ['query features', '200'])
    assert.deepEqual(await page.locator('#devices td.device').allTextContents(), ['fw-1', 'fw-2', 'fw-3'])
    // A device id is never broken across lines, in either table.
    const broken = await page.evaluate(() => [...document.querySelectorAll('.device')].filter((e) => {
      const range = document.createRange()
      range.selectNodeContents(e)
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size !== 1
    }).map((e) => e.textContent))
    assert.ok(await page.locator('.device').count() > 20)
    // And none could be, at any width: each sits in an unbreakable box.
    assert.deepEqual(await page.evaluate(() => [...new Set([...document.querySelectorAll('.device')].map((e) => getComputedStyle(e).whiteSpace))]), ['nowrap'])
    assert.deepEqual(broken, [])
  })

  test('the filter narrows the table to a device, or to problems', async (t) => {
    await page.fill('#filter', 'fw-3')
    const visible = () => page.locator('#exchanges tr:not(.hidden)')
    assert.equal(await visible().count(), 1)
    assert.match(await visible().textContent(), /missing fw-3/)
    assert.deepEqual(await page.locator('#devices tr:not(.hidden) td.device').allTextContents(), ['fw-3'])
    await shot(t, '4-filtered')
    await page.fill('#filter', '')
    await page.selectOption('#filter-state', 'problem')
    const states = await visible().evaluateAll((rows) => rows.map((r) => r.textContent))
    assert.equal(states.length, 2, states.join('\n'))
    assert.ok(states.some((s) => s.includes('missing fw-3')) && states.some((s) => s.includes('500 cannot contain that')))
    await page.selectOption('#filter-state', 'all')
    assert.ok(await visible().count() >= 14)
  })

  test('the form sends a command, and its exchange completes', async (t) => {
    await page.selectOption('#action', 'deny')
    await page.fill('#target', '{"ipv4_net": "10.0.0.0/8"}')
    await page.fill('#to', 'fw-1, fw-2')
    await page.click('#send-button')
    await page.locator('#send-result[data-request-id]').waitFor()
    const sentId = await page.locator('#send-result').getAttribute('data-request-id')
    assert.equal(await page.locator('#send-result').textContent(), `sent ${sentId}`)
    await page.locator(`tr[data-request-id="${sentId}"] td.pairing`, { hasText: /^awaiting fw-2/ }).waitFor()
    await page.locator(`tr[data-request-id="${sentId}"] td.pairing .complete`).waitFor()
    assert.match(await row(sentId).textContent(), /deny ipv4_net/)
    // A bad form entry is reported on the page, not sent.
    await page.fill('#target', '{not json')
    await page.click('#send-button')
    await page.locator('#send-result.error').waitFor()
    assert.match(await page.locator('#send-result').textContent(), /^Invalid JSON/)
    await page.fill('#target', '{"ipv4_net": "10.0.0.0/8"}')
    await shot(t, '5-traffic')
    assert.deepEqual(await page.evaluate(() => window.cspViolations), [])
  })

  test('a forged command from another page in the same browser is refused', async () => {
    const sendUrl = `${dashboard.base}api/send`
    const evil = await evilPage(sendUrl)
    try {
      const attacker = await context.newPage()
      const forged = []
      attacker.on('response', (r) => { if (r.url() === sendUrl) forged.push([r.request().resourceType(), r.status()]) })
      attacker.on('requestfailed', (r) => { if (r.url() === sendUrl) forged.push([r.resourceType(), r.failure().errorText]) })
      await attacker.goto(`http://127.0.0.1:${evil.address().port}/`)
      await attacker.waitForURL(sendUrl) // the form's navigation, after the fetch
      await attacker.waitForLoadState()
      // The fetch reaches the server (refused like the form), but its answer is
      // withheld from the page by Cross-Origin-Resource-Policy; the form's 403 shows.
      assert.deepEqual(forged, [['fetch', 'net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin'], ['document', 403]])
      assert.match(await attacker.textContent('body'), /Origin \\"http:\/\/127\.0\.0\.1:\d+\\" is not this dashboard/)
      await attacker.close()
    } finally {
      evil.close()
    }
    // A command from the dashboard afterwards runs; the forged one never did.
    const previous = await page.locator('#send-result').getAttribute('data-request-id')
    await page.fill('#to', 'fw-1')
    await page.click('#send-button')
    await page.waitForFunction((p) => ![undefined, p].includes(document.querySelector('#send-result').dataset.requestId), previous)
    const lastId = await page.locator('#send-result').getAttribute('data-request-id')
    await row(lastId).locator('.complete').waitFor()
    assert.ok(!ran.some((r) => r.endsWith(' allow')), `ran: ${ran}`)
    assert.equal(await page.locator('td.command', { hasText: 'allow' }).count(), 0)
  })

  test('the broker going away shows in the page, and so does its return', async (t) => {
    broker.stop()
    await page.locator('#broker-state.offline, #broker-state.reconnecting').waitFor()
    assert.match(await page.locator('#broker-state').textContent(), /^broker (offline|unreachable) since \d\d:\d\d:\d\d\.\d{3}$/)
    await page.locator('#broker-banner', { hasText: `No connection to ${broker.url}: ` }).waitFor()
    // The page's own link to the dashboard is fine all along.
    assert.equal(await page.locator('#status').textContent(), 'page: live')
    await shot(t, '6-broker-offline')
    broker = startBroker(['--port', String(brokerPort)])
    await page.locator('#broker-state[data-state="connected"]').waitFor({ timeout: 15000 })
    assert.equal(await page.locator('#broker-banner').isVisible(), false)
    // And traffic flows again (the devices reconnected too).
    const s = await producer.send({ action: 'query', target: { features: [] } }, { to: 'fw-1' }).collect()
    await row(s.requestId).locator('.complete').waitFor()
  })
})

test('a pairing window that is not a whole number of ms is refused at start', async () => {
  for (const bad of ['abc', '0', '2.5', '-1']) {
    await assert.rejects(startDashboard('mqtt://127.0.0.1:1', { args: [`--pairing-window=${bad}`] }), (e) => {
      assert.equal(e.code, 2)
      assert.equal(e.stderr, `dashboard: --pairing-window must be a whole number of milliseconds (1 to 999999999), not ${JSON.stringify(bad)}\n`)
      return true
    })
  }
})
