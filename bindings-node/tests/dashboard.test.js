'use strict'
// The dashboard example (examples/node/dashboard) in a real headless
// Chromium (Debian's, driven by playwright-core; no browser download):
// the token at the door, live traffic, requests with their responses and
// latency, missing responders, errors, the send form, and a forged command
// from another page in the same browser refused.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const mqtt = require('mqtt')
const { chromium } = require('playwright-core')

const { Producer, Consumer } = require('..')
const { startBroker } = require('./helpers/broker.js')
const { startDashboard } = require('./dashboard-harness.js')

const CHROMIUM = '/usr/bin/chromium'
const SHOT = path.join(require('node:os').tmpdir(), 'oc2mqtt-dashboard.png')

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

test('the dashboard shows live traffic and sends commands', { timeout: 90000 }, async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'Debian chromium is installed (make setup)')
  const broker = startBroker()
  const consumer = new Consumer({ url: broker.url, deviceId: 'fw-1', profiles: ['slpf'] })
  const producer = new Producer({ url: broker.url, id: 'test-producer' })
  const ran = [] // every action fw-1 executed
  let dashboard
  let browser
  let evil
  try {
    await consumer.connect()
    consumer.serve(async (command) => {
      ran.push(command.action)
      if (command.action === 'contain') throw new Error('cannot contain that')
      return { status: 200, status_text: `did ${command.action}` }
    })
    await producer.connect()
    dashboard = await startDashboard(broker.url)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    })
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } })
    // Anything the Content-Security-Policy blocks is a mismatch with what the page loads.
    await context.addInitScript(() => {
      window.cspViolations = []
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`))
    })
    const page = await context.newPage()

    // Without the token: refused, nothing of the page.
    const door = await page.goto(dashboard.base)
    assert.equal(door.status(), 401)
    assert.match(await page.textContent('body'), /a token is required: open the URL with \?token= that the dashboard printed/)
    assert.equal(await page.locator('#send-form').count(), 0)

    // The printed URL: in, then the token leaves the address bar for an HttpOnly cookie.
    const entry = await page.goto(dashboard.url)
    assert.equal(entry.status(), 200)
    assert.equal(page.url(), dashboard.base)
    assert.equal(entry.headers()['content-security-policy'].includes("frame-ancestors 'none'"), true)
    const cookies = await context.cookies()
    assert.deepEqual(cookies.map((c) => [c.name, c.value === dashboard.token, c.httpOnly, c.sameSite]), [[`oc2mqtt-dashboard-${dashboard.port}`, true, true, 'Strict']])
    assert.equal(await page.evaluate(() => document.cookie), '')
    await page.locator('#status.live').waitFor()

    // A command from another producer, seen through the broker.
    const s = await producer.send({ action: 'start', target: { process: { name: 'scan' } } }, { to: 'fw-1' }).collect()
    assert.equal(s.complete, true)
    const row = page.locator(`tr[data-request-id="${s.requestId}"]`)
    await row.locator('.response[data-status="200"]').waitFor()
    assert.match(await row.textContent(), /test-producer → fw-1/)
    assert.match(await row.locator('.command').textContent(), /^start process$/)
    assert.match(await row.locator('.response').textContent(), /^fw-1: 200 did start \(\d+\.\d ms\)$/)

    // The form: a command sent by the dashboard's own producer.
    await page.selectOption('#action', 'deny')
    await page.fill('#target', '{"ipv4_net": "10.0.0.0/8"}')
    await page.fill('#to', 'fw-1')
    await page.click('#send-button')
    await page.locator('#send-result[data-request-id]').waitFor()
    const sentId = await page.locator('#send-result').getAttribute('data-request-id')
    assert.match(await page.locator('#send-result').textContent(), new RegExp(`^sent ${sentId}$`))
    const sentRow = page.locator(`tr[data-request-id="${sentId}"]`)
    await sentRow.locator('.complete').waitFor()
    assert.match(await sentRow.textContent(), /deny ipv4_net/)
    assert.match(await sentRow.locator('.response').textContent(), /^fw-1: 200 did deny/)

    // A responder that never answers.
    await page.fill('#to', 'fw-1, ghost-9')
    await page.fill('#timeout', '500')
    await page.click('#send-button')
    await page.waitForFunction(() => [...document.querySelectorAll('td.missing')].some((td) => td.textContent === 'ghost-9'))

    // Errors: a handler failure (500) and a payload that is not OpenC2.
    await page.selectOption('#action', 'contain')
    await page.fill('#target', '{"device": {}}')
    await page.fill('#to', 'fw-1')
    await page.click('#send-button')
    await page.locator('#errors li[data-kind="status 500"]').waitFor()
    assert.match(await page.locator('#errors li[data-kind="status 500"]').first().textContent(), /fw-1 answered 500: cannot contain that/)
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
    await raw.publishAsync('oc2/cmd/all', '{"hello": "world"}', { qos: 1 })
    await raw.endAsync()
    await page.locator('#errors li[data-kind="OC2_DECODE"]').waitFor()
    assert.match(await page.locator('#errors li[data-kind="OC2_DECODE"]').textContent(), /unrecognised message/)

    // A bad form entry is reported on the page, not sent.
    await page.fill('#target', '{not json')
    await page.click('#send-button')
    await page.locator('#send-result.error').waitFor()
    assert.match(await page.locator('#send-result').textContent(), /^Invalid JSON/)

    assert.equal(await page.locator('#count-errors').textContent(), '2')
    assert.ok(Number(await page.locator('#count-requests').textContent()) >= 4)
    await page.screenshot({ path: SHOT, fullPage: true })
    assert.deepEqual(await page.evaluate(() => window.cspViolations), [])

    // Another page in the same browser, cookie and all, forges an `allow`: refused.
    const sendUrl = `${dashboard.base}api/send`
    evil = await evilPage(sendUrl)
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
    // A command sent from the dashboard afterwards runs; the forged one never did.
    await page.selectOption('#action', 'deny')
    await page.fill('#target', '{"ipv4_net": "192.0.2.0/24"}')
    await page.fill('#to', 'fw-1')
    await page.fill('#timeout', '5000')
    const previous = await page.locator('#send-result').getAttribute('data-request-id')
    await page.click('#send-button')
    await page.waitForFunction((p) => ![undefined, p].includes(document.querySelector('#send-result').dataset.requestId), previous)
    const lastId = await page.locator('#send-result').getAttribute('data-request-id')
    await page.locator(`tr[data-request-id="${lastId}"] .complete`).waitFor()
    assert.ok(!ran.includes('allow'), `fw-1 ran: ${ran}`)
    assert.equal(await page.locator('td.command', { hasText: 'allow' }).count(), 0)
  } finally {
    if (browser) await browser.close()
    if (evil) evil.close()
    if (dashboard) await dashboard.stop()
    await producer.close()
    await consumer.close()
    broker.stop()
  }
})
