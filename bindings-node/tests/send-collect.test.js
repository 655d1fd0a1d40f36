'use strict'
// Producer.sendCollect: send().collect() in one call, against a real
// Mosquitto (a throwaway one per test file, from tests/broker/broker.py).
// It must end every way send().collect() ends: complete, at an `expect`
// count, refused by the broker, unacknowledged at the timeout, aborted.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')

const { Producer, Consumer } = require('..')
const { startBroker } = require('./helpers/broker.js')

const START = { action: 'start', target: { process: { name: 'x' } } }
const QUERY = { action: 'query', target: { features: [] } }

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

test('a unicast command resolves with the summary send().collect() gives', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'sc-1' }))
  consumer.serve((command) => ({ status: 200, results: { echo: command.target } }))
  const producer = await connected(new Producer({ url: broker.url, id: 'sc-p' }))
  const summary = await producer.sendCollect(START, { to: 'sc-1', timeout: 5000 })
  const viaExchange = await producer.send(START, { to: 'sc-1', timeout: 5000 }).collect()
  for (const s of [summary, viaExchange]) {
    assert.deepEqual(Object.keys(s).sort(), ['complete', 'missing', 'missingCount', 'requestId', 'responses'])
    assert.equal(s.complete, true)
    assert.deepEqual(s.missing, [])
    assert.equal(s.missingCount, 0)
    assert.equal(s.responses.length, 1)
    assert.equal(s.responses[0].status, 200)
    assert.equal(s.responses[0].from, 'sc-1')
    assert.equal(s.responses[0].message.headers.request_id, s.requestId)
    assert.deepEqual(s.responses[0].message.body.openc2.response.results, { echo: START.target })
  }
  assert.notEqual(summary.requestId, viaExchange.requestId)
  // A whole request message is sent as given, as send() takes it.
  const message = { headers: { request_id: 'sc-given-1', to: ['sc-1'] }, body: { openc2: { request: QUERY } } }
  const given = await producer.sendCollect(message, { timeout: 5000 })
  assert.equal(given.requestId, 'sc-given-1')
  assert.equal(given.complete, true)
  assert.equal(given.responses[0].status, 200)
})

test('a broadcast with expect completes at the expected count; without, at the timeout', async () => {
  for (const id of ['scb-1', 'scb-2']) {
    const c = await connected(new Consumer({ url: broker.url, deviceId: id, topicPrefix: 'scb' }))
    c.serve(() => ({ status: 200 }))
  }
  const producer = await connected(new Producer({ url: broker.url, id: 'scb-p', topicPrefix: 'scb' }))
  const t0 = performance.now()
  const counted = await producer.sendCollect(START, { expect: 2, timeout: 5000 })
  assert.ok(performance.now() - t0 < 4000, 'completes at the second response, not at the timeout')
  assert.equal(counted.complete, true)
  assert.deepEqual(counted.responses.map((r) => r.from).sort(), ['scb-1', 'scb-2'])
  const t1 = performance.now()
  const unknown = await producer.sendCollect(START, { timeout: 400 })
  assert.ok(performance.now() - t1 >= 350, 'an audience without expect waits for the timeout')
  assert.equal(unknown.complete, false)
  assert.equal(unknown.responses.length, 2)
  const addressed = await producer.sendCollect(START, { to: ['scb-1', 'scb-ghost'], timeout: 400 })
  assert.equal(addressed.complete, false)
  assert.deepEqual(addressed.missing, ['scb-ghost'])
  assert.deepEqual(addressed.responses.map((r) => r.from), ['scb-1'])
})

test('many at once each resolve with their own responses', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'scm-1' }))
  consumer.serve((command) => ({ status: 200, results: { echo: command.target } }))
  const producer = await connected(new Producer({ url: broker.url, id: 'scm-p' }))
  const N = 300
  const names = Array.from({ length: N }, (_, i) => `p-${i}`)
  const summaries = await Promise.all(names.map((name) =>
    producer.sendCollect({ action: 'start', target: { process: { name } } }, { to: 'scm-1', timeout: 10000 })))
  assert.equal(new Set(summaries.map((s) => s.requestId)).size, N)
  summaries.forEach((s, i) => {
    assert.equal(s.complete, true, `exchange ${i}`)
    assert.equal(s.responses.length, 1)
    assert.equal(s.responses[0].message.headers.request_id, s.requestId)
    assert.deepEqual(s.responses[0].message.body.openc2.response.results, { echo: { process: { name: names[i] } } })
  })
  // Then one at a time (the lone-exchange path), as a sequential caller does.
  for (let i = 0; i < 50; i++) {
    const s = await producer.sendCollect(START, { to: 'scm-1', timeout: 10000 })
    assert.equal(s.complete, true)
  }
})

test('bad arguments and an unconnected producer throw as send() does', async () => {
  const notYet = new Producer({ url: broker.url, id: 'scx-p' })
  assert.throws(() => notYet.sendCollect(QUERY), { code: 'OC2_CLOSED', message: 'closed: the producer is not connected: call connect() first' })
  const producer = await connected(new Producer({ url: broker.url, id: 'scy-p' }))
  for (const [command, options] of [[42, undefined], [QUERY, { expect: -1 }], [QUERY, { timeout: 'soon' }], [QUERY, { nope: 1 }]]) {
    let fromSend
    assert.throws(() => producer.send(command, options), (e) => { fromSend = e; return true })
    assert.throws(() => producer.sendCollect(command, options), (e) => {
      assert.equal(e.name, fromSend.name)
      assert.equal(e.code, fromSend.code)
      assert.equal(e.message, fromSend.message)
      return true
    })
  }
  // A command the producer cannot send rejects, as collect() does.
  const unsendable = { headers: { request_id: 'x' }, body: { openc2: { response: { status: 200 } } } }
  const viaExchange = await producer.send(unsendable).collect().then(() => assert.fail('sent'), (e) => e)
  await assert.rejects(producer.sendCollect(unsendable), { name: viaExchange.name, code: viaExchange.code, message: viaExchange.message })
  assert.equal(viaExchange.code, 'OC2_CONFIG')
})

test('a command that is not plain JSON is read as send() reads it', async () => {
  // sendCollect sends a command of plain JSON (strings, booleans, safe
  // integers, arrays, plain objects) as JSON.stringify's text, and any other
  // through the property walk send() uses: each case must end as send() ends.
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'scj-1' }))
  // The command as the consumer read it, less its id (one per send).
  consumer.serve(({ command_id: _, ...command }) => ({ status: 200, results: { echo: command } }))
  const producer = await connected(new Producer({ url: broker.url, id: 'scj-p' }))
  const options = { to: 'scj-1', timeout: 5000 }
  class Named { constructor () { this.name = 'x' } }
  const inherits = Object.create({ inherited: 'yes' })
  inherits.name = 'x'
  const looped = { name: 'x' }
  looped.self = looped
  const withArgs = (args) => ({ action: 'start', target: { process: { name: 'x' } }, args })
  const nested = (n) => n === 0 ? 'end' : { a: nested(n - 1) }
  const cases = {
    plain: START,
    nan: withArgs({ duration: NaN }),
    infinite: withArgs({ duration: Infinity }),
    float: withArgs({ duration: 1.5 }),
    unsafe: withArgs({ duration: 2 ** 60 }),
    negativeZero: withArgs({ duration: -0 }),
    date: withArgs({ start_time: new Date(0) }),
    toJSON: withArgs({ x: { toJSON: () => 'made' } }),
    fn: { ...START, extra: () => 1 },
    symbol: { ...START, extra: Symbol('s') },
    bigint: withArgs({ duration: 1n }),
    boxed: { action: 'start', target: { process: { name: new String('x') } } }, // eslint-disable-line no-new-wrappers
    instance: { action: 'start', target: { process: new Named() } },
    inherited: { action: 'start', target: { process: inherits } },
    loop: { action: 'start', target: { process: looped } },
    holes: { action: 'query', target: { features: [, 'versions'] } }, // eslint-disable-line no-sparse-arrays
    deep: withArgs({ x: nested(40) }),
    tooDeep: withArgs({ x: nested(200) })
  }
  const outcome = async (f) => {
    try {
      const s = await f()
      return { results: s.responses.map((r) => r.message.body.openc2.response.results), complete: s.complete }
    } catch (e) {
      return { name: e.name, code: e.code, message: e.message }
    }
  }
  const seen = new Set()
  for (const [name, command] of Object.entries(cases)) {
    const viaSend = await outcome(() => producer.send(command, options).collect())
    const viaCollect = await outcome(() => producer.sendCollect(command, options))
    assert.deepEqual(viaCollect, viaSend, name)
    seen.add(viaSend.results !== undefined ? 'sent' : 'refused')
  }
  // Both ways are among the cases: some commands are sent, some refused.
  assert.deepEqual([...seen].sort(), ['refused', 'sent'])
})

test('a signal cancels it with an AbortError', async () => {
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'sca-1' }))
  c.serve(() => new Promise((resolve) => setTimeout(() => resolve({ status: 200 }), 3000)))
  const producer = await connected(new Producer({ url: broker.url, id: 'sca-p' }))
  const ac = new AbortController()
  const t0 = performance.now()
  setTimeout(() => ac.abort(), 100)
  await assert.rejects(producer.sendCollect(START, { to: 'sca-1', timeout: 10000, signal: ac.signal }), { name: 'AbortError', code: 'ABORT_ERR' })
  assert.ok(performance.now() - t0 < 2000, 'rejects at the abort, not at the timeout')
  await assert.rejects(producer.sendCollect(START, { to: 'sca-1', signal: AbortSignal.abort() }), { code: 'ABORT_ERR' })
  assert.throws(() => producer.sendCollect(START, { signal: 'no' }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('a command the broker refuses rejects with OC2_PUBLISH at once', async () => {
  const acl = ['user p', 'topic write oc2/cmd/device/allowed', 'topic read oc2/rsp/#', 'topic read oc2/rsp',
    'user d', 'topic read oc2/cmd/#', 'topic write oc2/rsp/#']
  const locked = startBroker(['--user', 'p:pw', '--user', 'd:pw', ...acl.flatMap((line) => ['--acl', line])])
  try {
    const consumer = await connected(new Consumer({ url: locked.url, deviceId: 'allowed', username: 'd', password: 'pw' }))
    consumer.serve(() => ({ status: 200 }))
    const producer = await connected(new Producer({ url: locked.url, id: 'scr-p', username: 'p', password: 'pw' }))
    const refused = { code: 'OC2_PUBLISH', message: 'broker refused the publish to oc2/cmd/device/forbidden: not authorized' }
    await assert.rejects(producer.send(QUERY, { to: 'forbidden' }).collect(), refused)
    const t0 = performance.now()
    await assert.rejects(producer.sendCollect(QUERY, { to: 'forbidden', timeout: 10000 }), refused)
    assert.ok(performance.now() - t0 < 2000, 'rejects at the refusal, not at the timeout')
    // Refused while others are in flight (the runtime's path): the same.
    const mixed = await Promise.allSettled([
      producer.sendCollect(START, { to: 'allowed' }),
      producer.sendCollect(QUERY, { to: 'forbidden' }),
      producer.sendCollect(START, { to: 'allowed' })
    ])
    assert.deepEqual(mixed.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
    assert.equal(mixed[1].reason.code, 'OC2_PUBLISH')
    assert.equal(producer.stats().publishErrors, 3)
  } finally {
    for (const o of open.splice(0).reverse()) await o.close()
    locked.stop()
  }
})

test('a broker that does not acknowledge the command rejects it with OC2_TIMEOUT at its timeout', async () => {
  const stalled = startBroker()
  const signal = (sig) => execFileSync('kill', [sig, String(stalled.pid)])
  try {
    const consumer = await connected(new Consumer({ url: stalled.url, deviceId: 'sct-1' }))
    consumer.serve(() => ({ status: 200 }))
    const producer = await connected(new Producer({ url: stalled.url, id: 'sct-p' }))
    signal('-STOP')
    let took
    try {
      const t0 = performance.now()
      const [alone, viaExchange] = await Promise.allSettled([
        producer.sendCollect(START, { to: 'sct-1', timeout: 1500 }),
        producer.send(START, { to: 'sct-1', timeout: 1500 }).collect()
      ])
      took = performance.now() - t0
      for (const r of [alone, viaExchange]) {
        assert.equal(r.status, 'rejected')
        assert.equal(r.reason.code, 'OC2_TIMEOUT')
        assert.match(r.reason.message, /^timed out: the broker did not acknowledge the command within 1\.5 s \(request_id /)
      }
    } finally {
      signal('-CONT')
    }
    assert.ok(took >= 1400 && took < 4000, `took ${took.toFixed(0)} ms`)
    // Once the broker answers again, so does the producer.
    const s = await producer.sendCollect(START, { to: 'sct-1', timeout: 10000 })
    assert.equal(s.complete, true)
  } finally {
    for (const o of open.splice(0).reverse()) await o.close()
    stalled.stop()
  }
})
