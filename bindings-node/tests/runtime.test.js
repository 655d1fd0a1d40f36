'use strict'
// How the addon runs its network work: one runtime thread per process beside
// the JavaScript thread, and work handed to it in the order it was made.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')

const { Producer, Consumer, Monitor } = require('..')
const { startBroker } = require('./helpers/broker.js')

const START = { action: 'start', target: { process: { name: 'x' } } }

let broker
const open = []

async function connected (obj) {
  await obj.connect()
  open.push(obj)
  return obj
}

test.before(() => { broker = startBroker() })
test.after(async () => {
  for (const o of open.reverse()) await o.close()
  broker.stop()
})

test('commands sent in one turn reach the handler in the order they were sent', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'order-1' }))
  const seen = []
  consumer.serve((command) => { seen.push(command.args.n) })
  const producer = await connected(new Producer({ url: broker.url, id: 'order-p' }))
  const n = 200
  const exchanges = []
  for (let i = 0; i < n; i++) exchanges.push(producer.send({ ...START, args: { n: i } }, { to: 'order-1', timeout: 10000 }))
  const summaries = await Promise.all(exchanges.map((e) => e.collect()))
  assert.ok(summaries.every((s) => s.complete))
  assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i))
})

// Thread names are read from /proc: Linux only.
test('every connection of a process is served by one runtime thread', { skip: process.platform !== 'linux' }, async () => {
  const names = () => fs.readdirSync('/proc/self/task').map((t) => {
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim()
    } catch {
      return '' // a thread that ended meanwhile
    }
  })
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'threads-1' }))
  consumer.serve(() => ({ status: 200 }))
  const producers = []
  for (let i = 0; i < 3; i++) producers.push(await connected(new Producer({ url: broker.url, id: `threads-p${i}` })))
  const monitor = await connected(new Monitor({ url: broker.url }))
  monitor.on('response', () => {})
  await Promise.all(producers.map((p) => p.send(START, { to: 'threads-1', timeout: 10000 }).collect()))
  assert.equal(names().filter((n) => n === 'oc2mqtt-io').length, 1)
  // The core's own multi-threaded runtime is not started as well.
  assert.equal(names().filter((n) => n === 'oc2mqtt').length, 0)
})
