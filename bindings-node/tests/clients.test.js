'use strict'
// Producer, Consumer and Monitor against a real Mosquitto (a throwaway one
// on a free port, from tests/broker/broker.py).

const test = require('node:test')
const assert = require('node:assert/strict')
const mqtt = require('mqtt')

const { Producer, Consumer, Monitor, decode } = require('..')
const { startBroker } = require('./helpers/broker.js')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const QUERY = { action: 'query', target: { features: [] } }
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

test('a command and its response make a round trip, in the dialect and encoding it came in', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'rt-1' }))
  const seen = []
  consumer.serve(async (command, incoming) => {
    seen.push({ command, from: incoming.message.headers.from, topic: incoming.topic, encoding: incoming.encoding, dialect: incoming.dialect })
    return { status: 200, status_text: 'done', results: { echo: command.target } }
  })
  const producer = await connected(new Producer({ url: broker.url, id: 'rt-p' }))
  const summary = await producer.send(START, { to: 'rt-1', encoding: 'cbor', dialect: 'otupy' }).collect()
  assert.equal(summary.complete, true)
  assert.deepEqual(summary.missing, [])
  assert.equal(summary.responses.length, 1)
  const [reply] = summary.responses
  assert.equal(reply.status, 200)
  assert.equal(reply.from, 'rt-1')
  assert.equal(reply.encoding, 'cbor')
  assert.equal(reply.dialect, 'otupy')
  assert.ok(reply.latencyMs > 0 && reply.latencyMs < 5000)
  assert.deepEqual(reply.message.body.openc2.response, { status: 200, status_text: 'done', results: { echo: { process: { name: 'x' } } } })
  assert.equal(reply.message.headers.request_id, summary.requestId)
  assert.deepEqual(reply.message.headers.to, ['rt-p'])
  // LS 3.3.1: a command without command_id reaches the handler with its request_id as one.
  assert.equal(seen[0].command.command_id, summary.requestId)
  delete seen[0].command.command_id
  assert.deepEqual(seen, [{ command: START, from: 'rt-p', topic: 'oc2/cmd/device/rt-1', encoding: 'cbor', dialect: 'otupy' }])
})

test('query features is answered by the consumer from its configuration', async () => {
  await connected(new Consumer({ url: broker.url, deviceId: 'qf-1', profiles: ['slpf'], pairs: { deny: ['ipv4_net'] } }))
    .then((c) => { c.serve(() => { throw new Error('not reached') }); return c })
  const producer = await connected(new Producer({ url: broker.url, id: 'qf-p' }))
  const s = await producer.send({ action: 'query', target: { features: ['versions', 'profiles', 'pairs'] } }, { to: 'qf-1' }).collect()
  assert.deepEqual(s.responses[0].message.body.openc2.response, {
    status: 200, results: { versions: ['1.0'], profiles: ['slpf'], pairs: { query: ['features'], deny: ['ipv4_net'] } }
  })
  const s501 = await producer.send(START, { to: 'qf-1' }).collect()
  assert.equal(s501.responses[0].status, 501)
})

test('a broadcast reaches every consumer; expect completes it early', async () => {
  for (const id of ['bc-1', 'bc-2']) {
    const c = await connected(new Consumer({ url: broker.url, deviceId: id, topicPrefix: 'bc' }))
    c.serve(() => ({ status: 200 }))
  }
  const producer = await connected(new Producer({ url: broker.url, id: 'bc-p', topicPrefix: 'bc' }))
  const t0 = Date.now()
  const counted = await producer.send(START, { expect: 2, timeout: 5000 }).collect()
  assert.equal(counted.complete, true)
  assert.ok(Date.now() - t0 < 4000, 'completes at the second response, not at the timeout')
  assert.deepEqual(counted.responses.map((r) => r.from).sort(), ['bc-1', 'bc-2'])
  const open = await producer.send(START, { timeout: 400 }).collect()
  assert.equal(open.complete, false, 'a broadcast without expect has no known audience')
  assert.equal(open.responses.length, 2)
  const addressed = await producer.send(START, { to: ['bc-1', 'bc-2', 'bc-ghost'], timeout: 400 }).collect()
  assert.equal(addressed.complete, false)
  assert.deepEqual(addressed.missing, ['bc-ghost'])
})

test('a 102 then a 200: the exchange ends on the final response', async () => {
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'slow-1' }))
  c.serve(async (command, incoming) => {
    await incoming.reply({ status: 102, status_text: 'working' })
    await sleep(100)
    return { status: 200 }
  })
  const producer = await connected(new Producer({ url: broker.url, id: 'slow-p' }))
  const statuses = []
  for await (const reply of producer.send(START, { to: 'slow-1', timeout: 5000 })) statuses.push(reply.status)
  assert.deepEqual(statuses, [102, 200])
  const s = await producer.send(START, { to: 'slow-1', timeout: 5000 }).collect()
  assert.deepEqual(s.responses.map((r) => r.status), [102, 200])
  assert.equal(s.complete, true)
  assert.ok(s.responses[1].latencyMs >= 90)
})

test('100 concurrent sends all complete', async () => {
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'many-1' }))
  let calls = 0
  c.serve(async (command) => { calls++; return { status: 200, results: { n: command.args.n } } })
  const producer = await connected(new Producer({ url: broker.url, id: 'many-p' }))
  const summaries = await Promise.all(Array.from({ length: 100 }, (_, n) =>
    producer.send({ ...START, args: { n } }, { to: 'many-1', timeout: 10000 }).collect()))
  assert.equal(calls, 100)
  summaries.forEach((s, n) => {
    assert.equal(s.complete, true)
    assert.deepEqual(s.responses.map((r) => r.message.body.openc2.response.results.n), [n])
  })
  assert.equal(new Set(summaries.map((s) => s.requestId)).size, 100)
})

test('an AbortSignal cancels an exchange', async () => {
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'ab-1' }))
  c.serve(async () => { await sleep(3000); return { status: 200 } })
  const producer = await connected(new Producer({ url: broker.url, id: 'ab-p' }))

  const ac = new AbortController()
  const ex = producer.send(START, { to: 'ab-1', timeout: 10000, signal: ac.signal })
  assert.equal(await ex.sent(), ex.requestId)
  const t0 = Date.now()
  setTimeout(() => ac.abort(), 100)
  await assert.rejects(ex.collect(), { name: 'AbortError', code: 'ABORT_ERR', message: 'The operation was aborted: the exchange was cancelled' })
  assert.ok(Date.now() - t0 < 2000, 'rejects at the abort, not at the timeout')
  assert.equal(ex.cancelled, true)

  const ac2 = new AbortController()
  const iter = producer.send(START, { to: 'ab-1', timeout: 10000, signal: ac2.signal })
  setTimeout(() => ac2.abort(), 100)
  await assert.rejects(async () => { for await (const r of iter) assert.fail(`no reply expected, got ${r.status}`) }, { name: 'AbortError' })

  const already = AbortSignal.abort()
  await assert.rejects(producer.send(START, { to: 'ab-1', signal: already }).next(), { code: 'ABORT_ERR' })

  // Leaving a for-await loop early cancels the exchange too.
  const c2 = await connected(new Consumer({ url: broker.url, deviceId: 'ab-2' }))
  c2.serve(async (cmd, incoming) => { await incoming.reply({ status: 102 }); await sleep(3000); return { status: 200 } })
  const ex3 = producer.send(START, { to: 'ab-2', timeout: 10000 })
  for await (const r of ex3) { assert.equal(r.status, 102); break }
  assert.equal(ex3.cancelled, true)
})

test('a handler that throws or rejects answers 500, and serving continues', async () => {
  // What a result means and every text for one that is not a response are
  // the core's, the same in every language (HandlerResult in core/src/rules.rs).
  const codes = 'expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503'
  const result = (mode) => {
    switch (mode) {
      case 'throw': throw new Error('disk on fire')
      case 'throw-empty': throw new RangeError()
      case 'throw-empty-string': throw '' // eslint-disable-line no-throw-literal
      case 'reject-string': return Promise.reject('plain string') // eslint-disable-line prefer-promise-reject-errors
      case 'reject-nothing': return Promise.reject() // eslint-disable-line prefer-promise-reject-errors
      case 'number': return 404
      case 'bad-number': return 99
      case 'big-number': return 1000
      case 'fraction': return 200.5
      case 'bad-status': return { status: 999 }
      case 'interim': return { status: 102 }
      case 'interim-number': return 102
      case 'bad-type': return 'x'
      case 'boolean': return true
      case 'nothing': return undefined
      case 'null': return null
      default: return { status: 200 }
    }
  }
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'err-1' }))
  c.serve(async (command) => result(command.args.mode))
  const syncThrow = await connected(new Consumer({ url: broker.url, deviceId: 'err-2' }))
  syncThrow.serve(() => { throw new TypeError('sync boom') })
  // A handler that answers at once (no Promise) goes through the same rule.
  const sync = await connected(new Consumer({ url: broker.url, deviceId: 'err-3' }))
  sync.serve((command) => result(command.args.mode))
  const producer = await connected(new Producer({ url: broker.url, id: 'err-p' }))
  const ask = async (to, mode) => (await producer.send({ ...START, args: { mode } }, { to }).collect()).responses[0].message.body.openc2.response
  for (const to of ['err-1', 'err-3']) {
    assert.deepEqual(await ask(to, 'throw'), { status: 500, status_text: 'disk on fire' })
    assert.deepEqual(await ask(to, 'ok'), { status: 200 })
    assert.deepEqual(await ask(to, 'throw-empty'), { status: 500, status_text: 'the handler failed: RangeError' })
    assert.deepEqual(await ask(to, 'throw-empty-string'), { status: 500, status_text: 'the handler failed' })
    assert.deepEqual(await ask(to, 'reject-string'), { status: 500, status_text: 'plain string' })
    assert.deepEqual(await ask(to, 'reject-nothing'), { status: 500, status_text: 'the handler failed' })
    assert.deepEqual(await ask(to, 'number'), { status: 404 })
    assert.deepEqual(await ask(to, 'bad-number'), { status: 500, status_text: `the handler returned an invalid status: 99; ${codes}` })
    assert.deepEqual(await ask(to, 'big-number'), { status: 500, status_text: `the handler returned an invalid status: 1000; ${codes}` })
    assert.deepEqual(await ask(to, 'fraction'), { status: 500, status_text: `the handler returned an invalid status: 200.5; ${codes}` })
    assert.deepEqual(await ask(to, 'bad-status'), { status: 500, status_text: `the handler returned an invalid response: status: unknown status code 999; ${codes}` })
    assert.deepEqual(await ask(to, 'interim'), { status: 500, status_text: 'the handler returned the interim status 102 as its final answer' })
    assert.deepEqual(await ask(to, 'interim-number'), { status: 500, status_text: 'the handler returned the interim status 102 as its final answer' })
    assert.deepEqual(await ask(to, 'bad-type'), { status: 500, status_text: 'the handler returned a value of type string; expected nothing, a status code or a response object' })
    assert.deepEqual(await ask(to, 'boolean'), { status: 500, status_text: 'the handler returned a value of type boolean; expected nothing, a status code or a response object' })
    assert.deepEqual(await ask(to, 'nothing'), { status: 200 })
    assert.deepEqual(await ask(to, 'null'), { status: 200 })
  }
  assert.deepEqual(await ask('err-2', 'any'), { status: 500, status_text: 'sync boom' })
  assert.deepEqual(await ask('err-1', 'ok'), { status: 200 }, 'still serving')
})

test('a handler past handlerTimeoutSecs is answered 500 while the others go on', async () => {
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'to-x', handlerTimeoutSecs: -1 }), { name: 'RangeError', message: 'The config.handlerTimeoutSecs must be a finite, non-negative number of seconds. Received -1' })
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'to-x', handlerTimeoutSecs: '1' }), { name: 'TypeError', message: 'The config.handlerTimeoutSecs must be of type number. Received type string' })
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'to-1', handlerTimeoutSecs: 0.5 }))
  c.serve(async (command) => {
    if (command.args.mode === 'hang') await new Promise(() => {})
    return { status: 200, status_text: 'quick' }
  })
  const producer = await connected(new Producer({ url: broker.url, id: 'to-p' }))
  const ask = async (mode) => (await producer.send({ ...START, args: { mode } }, { to: 'to-1', timeout: 5000 }).collect()).responses[0].message.body.openc2.response
  const t0 = Date.now()
  const [hung, quick] = await Promise.all([ask('hang'), ask('ok')])
  assert.deepEqual(hung, { status: 500, status_text: 'handler timed out after 0.5 s' })
  assert.deepEqual(quick, { status: 200, status_text: 'quick' })
  assert.ok(Date.now() - t0 < 3000, 'answered at the timeout, not the exchange timeout')
  await c.close()
})

test('response_requested none completes on the PUBACK', async () => {
  const producer = await connected(new Producer({ url: broker.url, id: 'none-p' }))
  const t0 = Date.now()
  const s = await producer.send({ ...START, args: { response_requested: 'none' } }, { to: 'nobody', timeout: 5000 }).collect()
  assert.equal(s.complete, true)
  assert.deepEqual(s.responses, [])
  assert.ok(Date.now() - t0 < 2000)
})

test('a command older than the freshness window is not run; one within it is', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'fresh-1' }))
  assert.ok(consumer.freshnessSecs > 0, 'on by default (the core\'s window)')
  const ran = []
  consumer.serve((command) => { ran.push(command.action); return { status: 200 } })
  const producer = await connected(new Producer({ url: broker.url, id: 'fresh-p' }))
  const request = (action, ageMs) => ({
    headers: { request_id: `fresh-${action}`, created: Date.now() - ageMs, to: ['fresh-1'] },
    body: { openc2: { request: { action, target: { ipv4_net: '10.0.0.0/8' } } } }
  })
  const stale = await producer.send(request('deny', 3600 * 1000), { timeout: 1000 }).collect()
  assert.deepEqual(stale.responses, [])
  assert.equal(stale.complete, false)
  const fresh = await producer.send(request('allow', 5000), { timeout: 5000 }).collect()
  assert.equal(fresh.complete, true)
  assert.deepEqual(fresh.responses.map((r) => r.status), [200])
  assert.deepEqual(ran, ['allow'])
  assert.equal(consumer.stats().stale, 1)
})

test('freshnessSecs: 0 turns the check off; a wrong value is refused', async () => {
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'x', freshnessSecs: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'x', freshnessSecs: 'soon' }), TypeError)
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'fresh-off', freshnessSecs: 0 }))
  assert.equal(consumer.freshnessSecs, 0)
  consumer.serve(() => ({ status: 200 }))
  const producer = await connected(new Producer({ url: broker.url, id: 'fresh-off-p' }))
  const old = {
    headers: { request_id: 'fresh-off-1', created: Date.now() - 3600 * 1000, to: ['fresh-off'] },
    body: { openc2: { request: START } }
  }
  const s = await producer.send(old, { timeout: 5000 }).collect()
  assert.deepEqual(s.responses.map((r) => r.status), [200])
  assert.equal(consumer.stats().stale, 0)
})

test('stats name the MQTT version spoken; broker names the URL in use', async () => {
  const before = new Producer({ url: broker.url, id: 'ver-p' })
  assert.equal(before.stats().mqttVersion, null)
  assert.equal(before.broker, null)
  for (const [mqttVersion, spoken] of [['auto', '5'], ['3.1.1', '3.1.1']]) {
    const roles = [
      new Producer({ url: broker.url, id: 'ver-p', mqttVersion }),
      new Consumer({ url: broker.url, deviceId: 'ver-1', mqttVersion }),
      new Monitor({ url: broker.url, mqttVersion })
    ]
    for (const role of roles) {
      await role.connect()
      assert.equal(role.stats().mqttVersion, spoken)
      assert.equal(role.stats().stale, 0)
      assert.equal(role.broker, broker.url)
      await role.close()
      assert.equal(role.broker, null)
    }
  }
})

test('the monitor pairs requests with responses, as events and as an iterator', async () => {
  const monitor = new Monitor({ url: broker.url, topicPrefix: 'mon', pairingWindowMs: 300 })
  const events = { request: [], response: [], undecodable: [], unanswered: [] }
  for (const k of Object.keys(events)) monitor.on(k, (e) => events[k].push(e))
  await connected(monitor)
  const c = await connected(new Consumer({ url: broker.url, deviceId: 'mon-1', topicPrefix: 'mon' }))
  c.serve(async () => { await sleep(20); return { status: 200 } })
  const producer = await connected(new Producer({ url: broker.url, id: 'mon-p', topicPrefix: 'mon' }))
  const iterated = []
  const reading = (async () => {
    for await (const e of monitor) {
      iterated.push(e.type)
      if (iterated.length === 3) break
    }
  })()
  const s = await producer.send(START, { to: 'mon-1' }).collect()
  await producer.send(START, { to: 'mon-ghost', timeout: 200 }).collect()
  const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
  await raw.publishAsync('mon/oc2/cmd/all', 'not json at all', { qos: 1 })
  await raw.endAsync()
  await reading
  for (let i = 0; i < 50 && (events.undecodable.length === 0 || events.unanswered.length === 0); i++) await sleep(50)

  const req = events.request.find((e) => e.requestId === s.requestId)
  assert.equal(req.topic, 'mon/oc2/cmd/device/mon-1')
  assert.equal(req.from, 'mon-p')
  assert.deepEqual(req.to, ['mon-1'])
  assert.equal(req.message.body.openc2.request.action, 'start')
  // The consumer publishes each response once, on oc2/rsp; the monitor shows it once.
  const rsps = events.response.filter((e) => e.requestId === s.requestId)
  assert.deepEqual(rsps.map((e) => e.topic), ['mon/oc2/rsp'])
  for (const r of rsps) {
    assert.equal(r.status, 200)
    assert.equal(r.from, 'mon-1')
    assert.ok(r.latencyMs >= 15 && r.latencyMs < 5000, `latency ${r.latencyMs}`)
  }
  assert.equal(events.undecodable.length, 1)
  assert.equal(events.undecodable[0].error.code, 'OC2_DECODE')
  assert.equal(events.undecodable[0].error.kind, 'syntax')
  assert.equal(events.undecodable[0].payload.toString(), 'not json at all')
  assert.deepEqual(events.unanswered.map((e) => e.missing), [['mon-ghost']])
  assert.deepEqual(iterated, ['request', 'response', 'request'])
  assert.equal(monitor.stats().received, 4, '2 commands, 1 response, 1 undecodable')
  assert.ok(monitor instanceof require('node:events').EventEmitter)
})

test('publishes the broker refuses are errors or counted, and serving goes on', async () => {
  const acl = [
    'user p', 'topic write oc2/cmd/device/allowed', 'topic read oc2/rsp/#', 'topic read oc2/rsp',
    // The consumer may answer on oc2/rsp, not on oc2/rsp/<producer>.
    'user d', 'topic read oc2/cmd/#', 'topic write oc2/rsp'
  ]
  const locked = startBroker(['--user', 'p:pw', '--user', 'd:pw', ...acl.flatMap((line) => ['--acl', line])])
  try {
    // Responses on both topics: the one on oc2/rsp/<producer> is refused by the ACL.
    const consumer = await connected(new Consumer({ url: locked.url, deviceId: 'allowed', username: 'd', password: 'pw', responseTopics: 'both' }))
    consumer.serve(() => ({ status: 200 }))
    const producer = await connected(new Producer({ url: locked.url, id: 'acl-p', username: 'p', password: 'pw' }))
    await assert.rejects(producer.send(QUERY, { to: 'forbidden' }).collect(), {
      code: 'OC2_PUBLISH', message: 'broker refused the publish to oc2/cmd/device/forbidden: not authorized'
    })
    assert.equal(producer.stats().publishErrors, 1)
    for (let i = 0; i < 3; i++) {
      assert.equal((await producer.send(START, { to: 'allowed' }).collect()).complete, true)
    }
    for (let i = 0; i < 250 && consumer.stats().publishErrors < 3; i++) await sleep(20)
    assert.equal(consumer.stats().publishErrors, 3)
    await producer.close()
    await consumer.close()
  } finally {
    locked.stop()
  }
})

test('connection and configuration errors have stable codes', async () => {
  const refused = new Producer({ url: 'mqtt://127.0.0.1:9', id: 'x', connectTimeoutSecs: 2 })
  await assert.rejects(refused.connect(), (e) => {
    assert.ok(['OC2_CONNECT', 'OC2_TIMEOUT'].includes(e.code), `${e.code}: ${e.message}`)
    return true
  })
  await assert.rejects(new Producer({ url: broker.url, id: 'x', keepAliveSecs: 600 }).connect(), {
    code: 'OC2_CONFIG', message: 'configuration: keepAliveSecs is 600, but MQTT-T allows at most 300'
  })
  await assert.rejects(new Consumer({ url: broker.url, deviceId: 'x', certFile: '/c.pem' }).connect(), {
    code: 'OC2_CONFIG', message: 'configuration: certFile and keyFile must be given together'
  })
  await assert.rejects(new Monitor({ url: broker.url, connectTimeoutSecs: 0 }).connect(), {
    code: 'OC2_CONFIG', message: 'configuration: connectTimeoutSecs must be at least 1'
  })
  await assert.rejects(new Producer({ url: 'http://x', id: 'x' }).connect(), { code: 'OC2_CONFIG', message: /broker URL 'http:\/\/x': unsupported scheme 'http'/ })
  await assert.rejects(new Consumer({ url: broker.url, deviceId: 'd#1' }).connect(), { code: 'OC2_TOPIC' })
  await assert.rejects(new Monitor({ url: broker.url, caFile: '/nonexistent/ca.pem' }).connect(), { code: 'OC2_IO', message: /cannot read CA file \/nonexistent\/ca.pem/ })
  const notYet = new Producer({ url: broker.url, id: 'x' })
  assert.throws(() => notYet.send(QUERY), { code: 'OC2_CLOSED', message: 'closed: the producer is not connected: call connect() first' })
  await assert.rejects(new Monitor({ url: broker.url }).next(), { code: 'OC2_CLOSED' })
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'x' }).serve(() => {}), { code: 'OC2_CLOSED' })
  const invalid = await connected(new Producer({ url: broker.url, id: 'inv-p' }))
  assert.throws(() => invalid.send({ action: 'explode', target: { x: 1 } }), {
    code: 'OC2_DECODE', path: 'action', message: "action: unknown action 'explode'"
  })
  await assert.rejects(invalid.send(QUERY, { to: 'bad+id' }).collect(), { code: 'OC2_TOPIC' })
  assert.equal(decode(Buffer.from('{"status":200}')).msgType, 'response')
})
