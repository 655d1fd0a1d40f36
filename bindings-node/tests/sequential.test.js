'use strict'
// A sequential exchange hands no work from the JavaScript thread to the
// runtime thread by waking it: what it hands over waits for the runtime
// thread's next wake-up (the PUBACK). Alone in a file: any other client in
// the process (a monitor of oc2/#) would wake that thread and hide a miss.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { Producer } = require('..')
const { startBroker } = require('./helpers/broker.js')

const fs = require('node:fs')
const payload = (name) => JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'payloads', name), 'utf8')).body.openc2
// The benchmark's exchange: SLPF deny, answered 200 with results.
const COMMAND = payload('deny_command.json').request
const RESPONSE = payload('ok_response.json').response

let broker
test.before(() => { broker = startBroker() })
test.after(() => broker.stop())

// The wait for a send's PUBACK is handed to the runtime thread without
// waking it: the PUBACK does. Were it queued after the PUBLISH was written,
// that thread could read the PUBACK and the response first and sleep on,
// and the exchange would wait for the guard timer (its timeout). Only a
// producer alone in its process shows it (a consumer beside it wakes the
// thread), so the consumer runs in a child process.
// The consumer, in a child process; resolves once it serves.
async function childConsumer (id) {
  const script = `
    const { Consumer } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const response = JSON.parse(process.argv[3])
    const c = new Consumer({ url: process.argv[1], deviceId: process.argv[2], profiles: ['slpf'] })
    c.connect().then(() => { c.serve(() => response); process.stdout.write('ready\\n') })
    process.on('SIGTERM', () => c.close().then(() => process.exit(0)))`
  const child = spawn(process.execPath, ['-e', script, broker.url, id, JSON.stringify(RESPONSE)], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`consumer exited with ${code}`)))
  })
  return child
}

// 5 000 sequential exchanges made by `exchange(producer)`: none may wait for the guard timer.
async function noneWaitsForATimer (id, exchange) {
  const child = await childConsumer(id)
  try {
    const producer = new Producer({ url: broker.url, id: `${id}-p` })
    await producer.connect()
    let slowest = 0
    for (let i = 0; i < 5000; i++) {
      const t = performance.now()
      const s = await exchange(producer, { to: id, timeout: 10000 })
      slowest = Math.max(slowest, performance.now() - t)
      assert.ok(s.complete)
    }
    await producer.close()
    assert.ok(slowest < 2000, `the slowest exchange took ${slowest.toFixed(0)} ms`)
  } finally {
    child.kill('SIGTERM')
  }
}

test('a producer alone in its process ends each sequential exchange without waiting for a timer', async () => {
  await noneWaitsForATimer('alone-1', (p, options) => p.send(COMMAND, options).collect())
})

// sendCollect starts its exchange on the JavaScript thread the same way
// (its task polled there once, up to the wait for the responses, then
// handed over): the same trap.
test('sendCollect alone in its process ends each sequential exchange without waiting for a timer', async () => {
  await noneWaitsForATimer('alone-2', (p, options) => p.sendCollect(COMMAND, options))
})
