'use strict'
// Makes the README's picture of the dashboard (not a test):
//
//   node tests/helpers/dashboard-demo.js ../docs/dashboard.png
//
// A throwaway Mosquitto, three devices (fw-edge-1 and fw-edge-2 fast,
// fw-core-3 slow; fw-edge-2 answers `contain` with 501), and 45 s of
// traffic from one producer: allow and deny to single devices, deny to all
// three, broadcast queries, commands to fw-dmz-4 that does not exist, and
// now and then a payload that is not OpenC2. Then a screenshot at 1280×900
// of the dashboard (started as a user starts it: loopback, token) in
// Debian's headless Chromium, with an awaited responder on screen.

const path = require('node:path')
const mqtt = require('mqtt')
const { chromium } = require('playwright-core')

const { Producer, Consumer } = require('../..')
const { startBroker } = require('./broker.js')
const { startDashboard } = require('../dashboard-harness.js')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const ignore = () => {}

async function main (out) {
  const broker = startBroker()
  const devices = []
  let dashboard
  let browser
  let producer
  let raw
  try {
    for (const [id, delay] of [['fw-edge-1', 3], ['fw-edge-2', 40], ['fw-core-3', 400]]) {
      const c = new Consumer({ url: broker.url, deviceId: id, profiles: ['slpf'] })
      await c.connect()
      c.serve(async (command) => {
        await sleep(delay + Math.random() * delay)
        if (command.action === 'contain') return { status: 501, status_text: 'contain is not implemented' }
        return { status: 200 }
      })
      devices.push(c)
    }
    producer = new Producer({ url: broker.url, id: 'soc-1' })
    await producer.connect()
    dashboard = await startDashboard(broker.url, { args: ['--pairing-window', '15000'] })
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-background-networking'] })
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
    await page.goto(dashboard.url)
    raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
    const send = (command, options) => producer.send(command, options).collect().catch(ignore)
    const end = Date.now() + 45000
    for (let i = 1; Date.now() < end; i++) {
      if (i % 9 === 0) send({ action: 'deny', target: { ipv4_net: `198.51.100.${i % 250}/32` } }, { to: ['fw-edge-1', 'fw-edge-2', 'fw-core-3'] })
      else if (i % 9 === 3) send({ action: 'query', target: { features: ['versions'] } })
      else if (i % 36 === 5) send({ action: 'contain', target: { device: { device_id: 'host-7' } } }, { to: 'fw-edge-2' })
      else if (i % 180 === 7) send({ action: 'deny', target: { ipv4_net: '203.0.113.0/24' } }, { to: ['fw-edge-1', 'fw-dmz-4'], timeout: 15000 })
      else if (i % 97 === 0) await raw.publishAsync('oc2/cmd/all', '{"action": "deny"', { qos: 1 })
      else send({ action: 'allow', target: { ipv4_net: `10.0.${i % 250}.0/24` } }, { to: i % 2 ? 'fw-edge-1' : 'fw-edge-2' })
      await sleep(60 + Math.random() * 120)
    }
    await producer.send({ action: 'deny', target: { ipv4_net: '203.0.113.0/24' } }, { to: ['fw-edge-1', 'fw-dmz-4'], timeout: 500 }).sent()
    await sleep(1500)
    await page.screenshot({ path: out })
    console.log(out)
  } finally {
    if (browser) await browser.close()
    if (dashboard) await dashboard.stop()
    if (raw) await raw.endAsync()
    if (producer) await producer.close()
    for (const c of devices) await c.close()
    broker.stop()
  }
}

main(path.resolve(process.argv[2] ?? 'dashboard.png')).catch((e) => {
  console.error(e)
  process.exitCode = 1
})
