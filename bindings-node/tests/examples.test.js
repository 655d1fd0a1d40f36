'use strict'
// The plugfest trio of examples/node works together on one broker:
// consumer.mjs answers, producer.mjs prints the replies, monitor.mjs shows
// the traffic paired with latency; Ctrl-C (SIGINT) ends the long-running ones.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { startBroker } = require('./helpers/broker.js')

const DIR = path.join(__dirname, '..', '..', 'examples', 'node')

function start (script, args) {
  const child = spawn(process.execPath, [path.join(DIR, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const run = { child, out: '' }
  child.stdout.on('data', (d) => { run.out += d })
  child.stderr.on('data', (d) => { run.out += d })
  run.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  run.waitFor = async (re, ms = 15000) => {
    const end = Date.now() + ms
    while (!re.test(run.out)) {
      if (Date.now() > end) throw new Error(`${script}: no ${re} in:\n${run.out}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return run
}

test('producer, consumer and monitor examples', { timeout: 60000 }, async () => {
  const broker = startBroker()
  const url = ['--url', broker.url]
  const consumer = start('consumer.mjs', [...url, '--id', 'fw-1', '--delay', '30'])
  const monitor = start('monitor.mjs', url)
  try {
    await consumer.waitFor(/fw-1 serving on/)
    await monitor.waitFor(/watching oc2\/# on/)
    assert.match(monitor.out, new RegExp(`connected to ${broker.url.replace(/\./g, '\\.')} \\(MQTT 5\\)`))

    const query = start('producer.mjs', [...url, '--to', 'fw-1'])
    assert.deepEqual(await query.exited, { code: 0, signal: null }, query.out)
    assert.match(query.out, /^sent query as [0-9a-f-]{36}\nfw-1 200 \(\d+\.\d ms\) \{"pairs":\{.*"profiles":\["slpf"\],"versions":\["1\.0"\]\}\n$/)

    const deny = start('producer.mjs', [...url, '--to', 'fw-1', '--action', 'deny', '--target', '{"ipv4_net":"10.0.0.0/8"}'])
    assert.deepEqual(await deny.exited, { code: 0, signal: null }, deny.out)
    assert.match(deny.out, /fw-1 102 working \(\d+\.\d ms\)\nfw-1 200 \(\d+\.\d ms\) \{"slpf":\{"rule_number":1\}\}\n$/)
    const requestId = /sent deny as (\S+)/.exec(deny.out)[1]

    await consumer.waitFor(/-> deny ipv4_net \(oc2\/cmd\/device\/fw-1\)/)
    await monitor.waitFor(new RegExp(`RSP ${requestId} fw-1 200 \\d+\\.\\d ms`))
    assert.match(monitor.out, new RegExp(`REQ ${requestId} producer-\\d+ -> fw-1 deny ipv4_net \\[oc2/cmd/device/fw-1\\]`))
    assert.match(monitor.out, new RegExp(`RSP ${requestId} fw-1 102 \\d+\\.\\d ms \\[oc2/rsp\\]`))
  } finally {
    consumer.child.kill('SIGINT')
    monitor.child.kill('SIGINT')
    const [c, m] = await Promise.all([consumer.exited, monitor.exited])
    broker.stop()
    assert.deepEqual(c, { code: 0, signal: null }, `consumer.mjs ends on Ctrl-C\n${consumer.out}`)
    assert.match(consumer.out, /closed\n$/)
    assert.deepEqual(m, { code: 0, signal: null }, `monitor.mjs ends on Ctrl-C\n${monitor.out}`)
  }
})
