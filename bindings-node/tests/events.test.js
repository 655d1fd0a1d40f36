'use strict'
// Connection events (as mqtt.js has them), `await using`, and the logger
// for the core's log records: each role against a broker that is stopped
// and started again on the same port.

const test = require('node:test')
const assert = require('node:assert/strict')
const { once } = require('node:events')

const { Producer, Consumer, Monitor, setLogger } = require('..')
const { startBroker } = require('./helpers/broker.js')

const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

// Every event a role emits, in order, with its argument.
function record (role) {
  const seen = []
  for (const name of ['connect', 'offline', 'reconnect', 'error', 'close', 'end']) {
    role.on(name, (arg) => seen.push({ name, arg }))
  }
  return seen
}

async function until (what, check, ms = 20000) {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('every role is an EventEmitter of its connection: connect, close, offline, reconnect, error, connect again, close, end', { timeout: 60000 }, async () => {
  let broker = startBroker()
  const port = broker.port
  const url = broker.url
  const roles = [
    new Producer({ url, id: 'ev-p' }),
    new Consumer({ url, deviceId: 'ev-fw', clientId: 'ev-consumer' }),
    new Monitor({ url })
  ]
  try {
    const logs = roles.map(record)
    for (const role of roles) {
      const connected = once(role, 'connect')
      await role.connect()
      // 'connect' is emitted before connect() resolves, as mqtt.js's connectAsync.
      assert.equal(logs[roles.indexOf(role)].length, 1)
      const [e] = await connected
      assert.deepEqual(e, { type: 'connect', broker: url, mqttVersion: '5', sessionResumed: false })
    }
    broker.stop()
    await until('a failed reconnect attempt on every role', () => logs.every((l) => l.some((e) => e.name === 'error')))
    for (const log of logs) {
      const names = log.map((e) => e.name)
      assert.deepEqual(names.slice(0, 5), ['connect', 'close', 'offline', 'reconnect', 'error'], names.join(' '))
      assert.equal(typeof log[2].arg.reason, 'string')
      assert.ok(log[2].arg.reason.length > 0)
      assert.deepEqual(log[3].arg, { type: 'reconnect', broker: url, attempt: 1 })
      const err = log[4].arg
      assert.ok(err instanceof Error)
      assert.equal(err.code, 'OC2_CONNECT')
      assert.equal(err.broker, url)
      assert.equal(err.attempt, 1)
      assert.match(err.message, /cannot connect to mqtt:\/\/127\.0\.0\.1/)
    }
    broker = startBroker(['--port', String(port)])
    await until('every role connected again', () => logs.every((l) => l.filter((e) => e.name === 'connect').length === 2))
    for (const [i, log] of logs.entries()) {
      const again = log.filter((e) => e.name === 'connect')[1].arg
      assert.equal(again.broker, url)
      // Only the consumer has a stable client id; the broker keeps no
      // persistence here, so nothing is resumed after its restart.
      assert.equal(again.sessionResumed, false, `role ${i}`)
      assert.ok(roles[i].stats().reconnects >= 1)
    }
    for (const [i, role] of roles.entries()) {
      const before = logs[i].length
      const ended = once(role, 'end')
      await role.close()
      await ended
      assert.deepEqual(logs[i].slice(before).map((e) => e.name), ['close', 'end'])
    }
  } finally {
    await Promise.all(roles.map((r) => r.close()))
    broker.stop()
  }
})

test('a failed reconnect attempt is not thrown when nobody listens for "error"', { timeout: 30000 }, async () => {
  const broker = startBroker()
  const producer = new Producer({ url: broker.url, id: 'ev-quiet' })
  try {
    await producer.connect()
    const attempts = []
    producer.on('reconnect', (e) => attempts.push(e.attempt))
    broker.stop()
    // (events.once would listen for 'error' itself.) An unheard 'error'
    // would have thrown from emit() and ended this process.
    await until('two failed attempts', () => attempts.length >= 2)
    assert.deepEqual(attempts.slice(0, 2), [1, 2])
    assert.equal(producer.listenerCount('error'), 0)
  } finally {
    await producer.close()
  }
})

test('Symbol.asyncDispose closes every role (await using)', async () => {
  const broker = startBroker()
  try {
    for (const role of [new Producer({ url: broker.url, id: 'ev-using' }), new Consumer({ url: broker.url, deviceId: 'ev-using' }), new Monitor({ url: broker.url })]) {
      assert.equal(typeof role[asyncDispose], 'function')
      await role.connect()
      assert.equal(role.broker, broker.url)
      const ended = once(role, 'end')
      await role[asyncDispose]()
      await ended
      assert.equal(role.broker, null)
    }
  } finally {
    broker.stop()
  }
})

test('setLogger routes the core\'s log records to a function, at the level asked', { timeout: 30000 }, async () => {
  const broker = startBroker()
  const records = []
  setLogger((r) => records.push(r), { level: 'warn' })
  const producer = new Producer({ url: broker.url, id: 'ev-log' })
  try {
    await producer.connect()
    const retried = once(producer, 'reconnect')
    broker.stop()
    await retried
    await until('the loss logged', () => records.some((r) => r.message === 'connection lost; reconnecting'))
    const lost = records.find((r) => r.message === 'connection lost; reconnecting')
    assert.equal(lost.level, 'warn')
    assert.equal(lost.target, 'oc2mqtt::client::connection')
    assert.equal(typeof lost.fields.why, 'string')
    assert.equal(lost.text, `connection lost; reconnecting why=${JSON.stringify(lost.fields.why)}`)
    assert.ok(records.every((r) => r.level === 'warn' || r.level === 'error'), 'nothing below warn')
  } finally {
    setLogger(null)
    await producer.close()
  }
})

test('setLogger takes console-like objects, survives a logger that throws, and null turns it off', { timeout: 30000 }, async () => {
  const broker = startBroker()
  const lines = { info: [], warn: [] }
  const logger = { info: (l) => lines.info.push(l), warn: (l) => lines.warn.push(l) }
  const producer = new Producer({ url: broker.url, id: 'ev-console' })
  try {
    setLogger(logger, { level: 'info' })
    await producer.connect()
    await until('connected, logged at info', () => lines.info.some((l) => l.startsWith('oc2mqtt: connected')))
    // A logger that throws loses its records, nothing else.
    setLogger(() => { throw new Error('logger bug') }, { level: 'debug' })
    const s = await producer.send({ action: 'query', target: { features: [] } }, { timeout: 200 }).collect()
    assert.equal(s.requestId.length > 0, true)
    setLogger(null)
    const before = lines.warn.length
    const retried = once(producer, 'reconnect')
    broker.stop()
    await retried
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(lines.warn.length, before, 'nothing logged once turned off')
  } finally {
    setLogger(null)
    await producer.close()
  }
})

test('setLogger refuses a wrong level or logger with Node\'s argument errors', () => {
  // The levels are core's (LogLevel::ALL), most severe first.
  assert.throws(() => setLogger(console, { level: 'loud' }), {
    name: 'TypeError',
    code: 'ERR_INVALID_ARG_VALUE',
    message: 'The "options.level" property must be one of \'error\', \'warn\', \'info\', \'debug\', \'trace\'. Received "loud"'
  })
  assert.throws(() => setLogger('console'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  setLogger(null)
})
