'use strict'
// The dashboard example (examples/node/dashboard) in a real headless
// Chromium (Debian's, driven by playwright-core; no browser download):
// live traffic, requests with their responses and latency, missing
// responders, errors, and the send form.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const mqtt = require('mqtt')
const { chromium } = require('playwright-core')

const { Producer, Consumer } = require('..')
const { startBroker } = require('./helpers/broker.js')

const SERVER = path.join(__dirname, '..', '..', 'examples', 'node', 'dashboard', 'server.mjs')
const CHROMIUM = '/usr/bin/chromium'
const SHOT = path.join(require('node:os').tmpdir(), 'oc2mqtt-dashboard.png')

function startDashboard (url) {
  const child = spawn(process.execPath, [SERVER, '--url', url, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /dashboard on (http:\/\/\S+)/.exec(out)
      if (m) resolve({ child, url: m[1] })
    })
    child.stderr.on('data', (d) => { out += d })
    child.on('exit', (code) => reject(new Error(`dashboard exited (${code}): ${out}`)))
  })
}

test('the dashboard shows live traffic and sends commands', { timeout: 90000 }, async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'Debian chromium is installed (make setup)')
  const broker = startBroker()
  const consumer = new Consumer({ url: broker.url, deviceId: 'fw-1', profiles: ['slpf'] })
  const producer = new Producer({ url: broker.url, id: 'test-producer' })
  let dashboard
  let browser
  try {
    await consumer.connect()
    consumer.serve(async (command) => {
      if (command.action === 'contain') throw new Error('cannot contain that')
      return { status: 200, status_text: `did ${command.action}` }
    })
    await producer.connect()
    dashboard = await startDashboard(broker.url)
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
    })
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    await page.goto(dashboard.url)
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
  } finally {
    if (browser) await browser.close()
    if (dashboard) {
      const exited = new Promise((resolve) => dashboard.child.on('exit', resolve))
      dashboard.child.kill('SIGTERM')
      await exited
    }
    await producer.close()
    await consumer.close()
    broker.stop()
  }
})
