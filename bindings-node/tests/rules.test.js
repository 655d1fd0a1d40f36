'use strict'
// The shared rule vectors of tests/rules/ through ConsumerRules, with the same
// checks as the Rust runner (core/tests/rules.rs): see tests/rules/README.md.
// Then the options that came with them (peer, responseTopics, args,
// unsolicited responses) against a real Mosquitto.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const mqtt = require('mqtt')

const { ConsumerRules, Request, Producer, Consumer, decode, encode } = require('..')
const { startBroker } = require('./helpers/broker.js')

const ROOT = path.join(__dirname, '..', '..', 'tests', 'rules')

function loadCases () {
  return fs.readdirSync(ROOT)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, data: JSON.parse(fs.readFileSync(path.join(ROOT, f), 'utf8')) }))
}

function payloadOf (step) {
  if ('payload_json' in step) return Buffer.from(JSON.stringify(step.payload_json))
  if ('payload_text' in step) return Buffer.from(step.payload_text, 'utf8')
  return Buffer.from(step.payload_hex, 'hex')
}

/** Vector properties ({payload_format_indicator, content_type, user_properties: pairs}) in our shape. */
function propertiesOf (step) {
  const p = step.properties
  if (p === undefined || p === null) return null
  const out = {}
  if ('payload_format_indicator' in p) out.payloadFormatIndicator = p.payload_format_indicator
  if ('content_type' in p) out.contentType = p.content_type
  if ('user_properties' in p) out.userProperties = p.user_properties
  return out
}

function rulesOf (c) {
  const o = { deviceId: c.consumer.device_id }
  const keys = { profiles: 'profiles', pairs: 'pairs', args: 'args', freshness_secs: 'freshnessSecs', handle_features: 'handleFeatures', rate_limit: 'rateLimit' }
  for (const [k, js] of Object.entries(keys)) if (k in c.consumer) o[js] = c.consumer[k]
  const t = c.topics || {}
  if (t.peer !== undefined) o.peer = t.peer
  if (t.response_topics !== undefined) o.responseTopics = t.response_topics
  return new ConsumerRules(o)
}

const same = (a, b) => {
  try {
    assert.deepStrictEqual(a, b)
    return true
  } catch {
    return false
  }
}

function checkPublish (got, want, at, problems) {
  want = want || []
  if (got.length !== want.length) {
    problems.push(`${at}: ${got.length} responses published, expected ${want.length}: ${JSON.stringify(got.map((p) => p.message))}`)
    return
  }
  got.forEach((p, i) => {
    const w = want[i]
    const where = `${at} publish[${i}]`
    if (!same(p.topics, w.topics || [])) problems.push(`${where}: topics ${JSON.stringify(p.topics)}, expected ${JSON.stringify(w.topics)}`)
    let d
    try {
      d = decode(p.payload, p.properties)
    } catch (e) {
      problems.push(`${where}: our own payload does not decode: ${e.message}`)
      return
    }
    if ('dialect' in w && d.dialect !== w.dialect) problems.push(`${where}: dialect ${d.dialect}, expected ${w.dialect}`)
    if ('msg_type_property' in w && p.properties.userProperties.msgType !== w.msg_type_property) {
      problems.push(`${where}: msgType ${p.properties.userProperties.msgType}, expected ${w.msg_type_property}`)
    }
    const headers = d.message.headers
    for (const key of ['request_id', 'from', 'to']) {
      const expected = (w.headers || {})[key] ?? null
      const actual = headers[key] ?? null
      if (!same(actual, expected)) problems.push(`${where}: headers.${key} ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
    }
    if (d.msgType !== 'response') {
      problems.push(`${where}: not a response`)
      return
    }
    const rsp = d.message.body.openc2.response
    if (rsp.status !== w.status) problems.push(`${where}: status ${rsp.status}, expected ${w.status} (${rsp.status_text})`)
    if ('status_text_contains' in w && !(rsp.status_text || '').includes(w.status_text_contains)) {
      problems.push(`${where}: status_text ${JSON.stringify(rsp.status_text)} does not contain ${JSON.stringify(w.status_text_contains)}`)
    }
    if ('results' in w && !same(rsp.results ?? null, w.results)) {
      problems.push(`${where}: results ${JSON.stringify(rsp.results)}, expected ${JSON.stringify(w.results)}`)
    }
  })
}

function runCase (c) {
  const problems = []
  const rules = rulesOf(c)
  c.steps.forEach((step, i) => {
    const at = `step ${i}`
    const d = rules.onCommand(step.topic, payloadOf(step), propertiesOf(step), step.retained === true, step.now_ms, step.at_ms)
    const expect = step.expect
    if (d.skipped !== (expect.skipped ?? null)) problems.push(`${at}: skipped ${d.skipped}, expected ${expect.skipped} (${d.reason})`)
    checkPublish(d.publish, expect.publish, at, problems)
    if (d.execute === null) {
      if (expect.execute !== undefined) problems.push(`${at}: not executed, expected it`)
      return
    }
    if (expect.execute === undefined) {
      problems.push(`${at}: executed, expected not`)
      return
    }
    if ('command_id' in expect.execute && (d.execute.command.command_id ?? null) !== expect.execute.command_id) {
      problems.push(`${at}: command_id ${d.execute.command.command_id}, expected ${expect.execute.command_id}`)
    }
    if (expect.answer !== undefined) {
      const out = rules.answer(d.execute, expect.answer.response)
      checkPublish(out === null ? [] : [out], expect.answer.publish, `${at} answer`, problems)
    }
  })
  return problems
}

const cases = loadCases()

test('the rule vectors are there: at least 27', () => {
  assert.ok(cases.length >= 27, `found ${cases.length} rule vectors in ${ROOT}`)
})

for (const c of cases) {
  test(`rule vector ${c.name}`, () => {
    const problems = runCase(c.data)
    assert.deepEqual(problems, [], `${c.name}:\n  - ${problems.join('\n  - ')}`)
  })
}

// --- The sans-IO API itself ----------------------------------------------------

const DENY = { action: 'deny', target: { ipv4_net: '10.0.0.0/8' } }
const command = (id, cmd = DENY, headers = {}) =>
  Buffer.from(JSON.stringify({ headers: { request_id: id, from: 'p1', ...headers }, body: { openc2: { request: cmd } } }))

test('a decision hands over a Request, and the answer comes back ready for mqtt.js', () => {
  const rules = new ConsumerRules({ deviceId: 'fw-1', pairs: { deny: ['ipv4_net'] }, responseTopics: 'both' })
  assert.equal(rules.deviceId, 'fw-1')
  const d = rules.onCommand('oc2/cmd/device/fw-1', command('r1'), null, false, 0, 0)
  assert.deepEqual([d.publish, d.skipped, d.reason], [[], null, null])
  const req = d.execute
  assert.ok(req instanceof Request)
  assert.equal(req.topic, 'oc2/cmd/device/fw-1')
  assert.equal(req.encoding, 'json')
  assert.equal(req.dialect, 'spec')
  assert.equal(req.responseRequested, 'complete')
  assert.equal(req.command.action, 'deny')
  assert.equal(req.message.headers.request_id, 'r1')
  const out = rules.answer(req, { status: 200, results: { slpf: { rule_number: 1 } } })
  assert.deepEqual(out.topics, ['oc2/rsp', 'oc2/rsp/p1'])
  assert.ok(Buffer.isBuffer(out.payload))
  assert.equal(out.properties.contentType, 'application/openc2')
  assert.equal(out.properties.userProperties.msgType, 'rsp')
  assert.deepEqual(out.message.headers.to, ['p1'])
  assert.equal(out.message.headers.from, 'fw-1')

  const again = rules.onCommand('oc2/cmd/all', command('r1'), undefined, false, 0, 5)
  assert.deepEqual([again.skipped, again.execute, again.reason], ['duplicate', null, null])
  const old = rules.onCommand('oc2/cmd/all', command('r2', DENY, { created: 1000 }), null, false, 10_000_000, 6)
  assert.equal(old.skipped, 'stale')
  assert.match(old.reason, /freshness window/)
  const kept = rules.onCommand('oc2/cmd/all', command('r3'), null, true, 0, 7)
  assert.deepEqual([kept.skipped, kept.reason], ['stale', 'delivered as a retained message'])
  const undeclared = rules.onCommand('oc2/cmd/all', command('r4', { action: 'allow', target: { ipv4_net: '1.2.3.4' } }), null, false, 0, 8)
  assert.deepEqual([undeclared.skipped, undeclared.reason], ['answered', '501'])
  assert.deepEqual(undeclared.publish.map((p) => p.message.body.openc2.response.status), [501])
  const bad = rules.onCommand('oc2/cmd/all', Buffer.from('{not json'), null, false, 0, 9)
  assert.equal(bad.skipped, 'undecodable')
  assert.match(bad.reason, /JSON/)
})

test('properties pass in and out, and an answer not to send is null', () => {
  const rules = new ConsumerRules({ deviceId: 'fw-1', peer: 'oif' })
  const { payload, properties } = encode(JSON.parse(command('r1').toString()), { encoding: 'cbor' })
  const d = rules.onCommand('oc2/cmd/all', payload, properties, false, 0, 0)
  assert.equal(d.execute.encoding, 'cbor')
  const out = rules.answer(d.execute, { status: 200 })
  assert.equal(decode(out.payload, out.properties).encoding, 'cbor')
  assert.equal(out.properties.userProperties.msgType, 'response')
  const silent = rules.onCommand('oc2/cmd/all', command('r2', { ...DENY, args: { response_requested: 'none' } }), null, false, 0, 0)
  assert.equal(rules.answer(silent.execute, { status: 200 }), null)
})

test('bad options and arguments are errors naming them', () => {
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', peer: 'plugfest' }), { code: 'ERR_INVALID_ARG_VALUE', message: /options\.peer is invalid: unknown peer 'plugfest'/ })
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', responseTopics: 'all' }), { code: 'ERR_INVALID_ARG_VALUE', message: /unknown response topics/ })
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', args: ['a..b'] }), { code: 'OC2_CONFIG', message: /argument 'a\.\.b'/ })
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', args: 'x-acme' }), { code: 'ERR_INVALID_ARG_TYPE', message: /options\.args/ })
  assert.throws(() => new ConsumerRules({ deviceId: 'fw#1' }), { code: 'OC2_TOPIC' })
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', url: 'mqtt://x' }), { code: 'ERR_INVALID_ARG_VALUE', message: /unknown property "url"/ })
  // The topic scheme's settings are core's TopicScheme table: peer and responseTopics, not a client's others.
  assert.throws(() => new ConsumerRules({ deviceId: 'fw-1', topicPrefix: 'site' }), {
    code: 'ERR_INVALID_ARG_VALUE',
    message: /unknown property "topicPrefix"; known properties: deviceId, profiles, .*, freshnessSecs, peer, responseTopics$/
  })
  assert.throws(() => new ConsumerRules(), { code: 'ERR_INVALID_ARG_TYPE' })
  const rules = new ConsumerRules({ deviceId: 'fw-1' })
  assert.throws(() => rules.onCommand('oc2/cmd/all', 12, null, false, 0, 0), { code: 'ERR_INVALID_ARG_TYPE', message: /"payload" argument/ })
  assert.throws(() => rules.onCommand('oc2/cmd/all', Buffer.from('{}'), null, false, -1, 0), { code: 'ERR_OUT_OF_RANGE', message: /"nowMs" argument/ })
  const d = rules.onCommand('oc2/cmd/all', command('r1'), null, false, 0, 0)
  assert.throws(() => rules.answer(d.execute, { status: 1234 }), { code: 'OC2_DECODE' })
  assert.throws(() => rules.answer(d.execute, 200), { code: 'ERR_INVALID_ARG_TYPE', message: /"response" argument/ })
  assert.throws(() => rules.answer({}, { status: 200 }))
})

test('the typings describe ConsumerRules, peer, responseTopics, args and nextUnsolicited', () => {
  const { spawnSync } = require('node:child_process')
  const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
  const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']
  const r = spawnSync(process.execPath, [tsc, ...flags, path.join(__dirname, 'types', 'rules-usage.ts')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

// --- Options on a broker ---------------------------------------------------------

let broker
const open = []
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

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

test('config peer and responseTopics: a consumer answering on both topics', async () => {
  assert.throws(() => new Producer({ url: broker.url, id: 'x', peer: 'nobody' }), { code: 'ERR_INVALID_ARG_VALUE', message: /config\.peer/ })
  assert.throws(() => new Producer({ url: broker.url, id: 'x', responseTopics: 2 }), { code: 'ERR_INVALID_ARG_TYPE', message: /config\.responseTopics/ })
  // otupyCompat still works beside peer.
  assert.ok(new Producer({ url: broker.url, id: 'x', otupyCompat: true }))

  const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
  const seen = []
  raw.on('message', (topic) => seen.push(topic))
  await raw.subscribeAsync(['oc2/rsp', 'oc2/rsp/+'], { qos: 1 })
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'rtb-fw', responseTopics: 'both', peer: 'spec' }))
  consumer.serve(() => ({ status: 200 }))
  const producer = await connected(new Producer({ url: broker.url, id: 'rtb-p' }))
  const summary = await producer.send(DENY, { to: 'rtb-fw', timeout: 5000 }).collect()
  assert.equal(summary.complete, true)
  for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20)
  await raw.endAsync()
  assert.deepEqual(seen.sort(), ['oc2/rsp', 'oc2/rsp/rtb-p'])
})

test('consumer args: declared arguments reach the handler, others get 501', async () => {
  const consumer = await connected(new Consumer({ url: broker.url, deviceId: 'args-fw', pairs: [['deny', 'ipv4_net']], args: ['x-acme'] }))
  const seen = []
  consumer.serve((cmd) => { seen.push(cmd.args) })
  const producer = await connected(new Producer({ url: broker.url, id: 'args-p' }))
  const ok = await producer.send({ ...DENY, args: { 'x-acme': { mode: 1 } } }, { to: 'args-fw', timeout: 5000 }).collect()
  assert.equal(ok.responses[0].status, 200)
  const refused = await producer.send({ ...DENY, args: { 'x-other': 1 } }, { to: 'args-fw', timeout: 5000 }).collect()
  assert.equal(refused.responses[0].status, 501)
  assert.match(refused.responses[0].message.body.openc2.response.status_text, /x-other/)
  assert.deepEqual(seen, [{ 'x-acme': { mode: 1 } }])
})

test('producer.nextUnsolicited hands over a response that matched no exchange', async () => {
  const producer = new Producer({ url: broker.url, id: 'un-p' })
  await assert.rejects(producer.nextUnsolicited(10), { code: 'OC2_CLOSED' })
  await producer.connect()
  assert.equal(await producer.nextUnsolicited(50), null)
  assert.throws(() => producer.nextUnsolicited(-1), { code: 'ERR_OUT_OF_RANGE' })
  const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
  const waiting = producer.nextUnsolicited()
  await raw.publishAsync('oc2/rsp', '{"status":200}', { qos: 1 })
  const r = await waiting
  assert.equal(r.status, 200)
  assert.equal(r.topic, 'oc2/rsp')
  assert.equal(r.dialect, 'bare')
  assert.ok(producer.stats().unsolicited >= 1)
  await raw.endAsync()
  // A wait without a limit ends with null when the producer closes.
  const pending = producer.nextUnsolicited()
  await producer.close()
  assert.equal(await pending, null)
})
