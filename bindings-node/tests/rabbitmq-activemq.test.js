'use strict'
// Smoke test on RabbitMQ 3.10 and ActiveMQ 5.17 (MQTT 3.1.1 only) with the
// default settings but for the broker URL and the credentials: the default
// `auto` MQTT version falls back to 3.1.1, a producer <-> consumer exchange
// completes, and a wrong password is refused by name. Both brokers start
// once for this file, side by side, and are stopped by PID at the end; the
// two brokers' checks run concurrently.

const test = require('node:test')
const assert = require('node:assert/strict')

const { Producer, Consumer } = require('..')
const { startBrokerAsync } = require('./helpers/broker.js')

const KINDS = ['rabbitmq', 'activemq']
const USER = 'oc2'
const PASSWORD = 's3cret-pw'
const DENY = { action: 'deny', target: { ipv4_net: '10.0.0.0/8' } }

const brokers = {}

test.before(async () => {
  const started = await Promise.allSettled(KINDS.map((kind) => startBrokerAsync(['--kind', kind, '--user', `${USER}:${PASSWORD}`])))
  started.forEach((r, i) => { if (r.status === 'fulfilled') brokers[KINDS[i]] = r.value })
  const failed = started.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
})

test.after(() => {
  for (const b of Object.values(brokers)) b.stop()
})

async function smoke (kind) {
  const broker = brokers[kind]
  assert.ok(broker, `${kind} did not start`)
  // Default settings except the broker URL and the credentials.
  const login = { url: broker.url, username: USER, password: PASSWORD }
  const consumer = new Consumer({ ...login, deviceId: 'fw-1' })
  const producer = new Producer({ ...login, id: 'ctl-1' })
  try {
    await consumer.connect()
    const commands = []
    const serving = consumer.serve((command, incoming) => {
      commands.push([command.action, incoming.message.headers.from])
      return { status: 200, status_text: 'denied' }
    })
    await producer.connect()

    // 1. A deny to fw-1, answered 200 within a few seconds.
    const t0 = Date.now()
    const s = await producer.send(DENY, { to: ['fw-1'], timeout: 5000 }).collect()
    const took = Date.now() - t0
    assert.equal(s.complete, true, `${kind}: ${JSON.stringify(s)}`)
    assert.ok(took < 4000, `${kind}: the exchange took ${took} ms`)
    assert.deepEqual(s.missing, [])
    assert.deepEqual(s.responses.map((r) => [r.status, r.from]), [[200, 'fw-1']])
    assert.deepEqual(s.responses[0].message.body.openc2.response, { status: 200, status_text: 'denied' })
    assert.deepEqual(commands, [['deny', 'ctl-1']])

    // 2. No MQTT v5 on these brokers: the default 'auto' spoke 3.1.1.
    assert.equal(producer.stats().mqttVersion, '3.1.1', kind)
    assert.equal(consumer.stats().mqttVersion, '3.1.1', kind)
    assert.equal(producer.broker, broker.url)

    await consumer.close()
    await serving
  } finally {
    await producer.close()
    await consumer.close()
  }

  // 3. A wrong password.
  const refused = new Producer({ ...login, password: 'wrong', id: 'ctl-bad' })
  const t1 = Date.now()
  await assert.rejects(refused.connect(), (e) => {
    assert.ok(e instanceof Error, kind)
    assert.equal(e.code, 'OC2_AUTH', `${kind}: ${e.code}: ${e.message}`)
    assert.equal(e.message, 'broker refused the connection: bad user name or password', kind)
    return true
  })
  assert.ok(Date.now() - t1 < 5000, `${kind}: refused after ${Date.now() - t1} ms`)
  await refused.close()
}

test('default settings work on RabbitMQ and ActiveMQ (MQTT 3.1.1)', { concurrency: true }, async (t) => {
  await Promise.all(KINDS.map((kind) => t.test(kind, () => smoke(kind))))
})
