'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')

const { Topics, Correlator, Deduplicator, filterMatches, validateId, sharedSubscription, encode, decode } = require('..')

const response = (id, from, status) => ({ headers: { request_id: id, from }, body: { openc2: { response: { status } } } })
const request = (to, actuator) => ({
  headers: { request_id: 'r', from: 'p', ...(to ? { to } : {}) },
  body: { openc2: { request: { action: 'deny', target: { ipv4_net: '1.2.3.4' }, ...(actuator ? { actuator: { [actuator]: {} } } : {}) } } }
})

test('topics: subscriptions per role, with a prefix', () => {
  const t = new Topics()
  assert.deepEqual(t.subscriptions('consumer', 'fw-1', ['slpf']), ['oc2/cmd/all', 'oc2/cmd', 'oc2/cmd/ap/slpf', 'oc2/cmd/device/fw-1'])
  assert.deepEqual(t.subscriptions('producer', 'p1'), ['oc2/rsp', 'oc2/rsp/p1'])
  assert.deepEqual(t.subscriptions('monitor'), ['oc2/#'])
  const site = new Topics({ prefix: 'site-a/', otupyCompatible: true })
  assert.equal(site.prefix, 'site-a/')
  assert.equal(site.peer, 'otupy')
  // otupy's producers listen on oc2/rsp/device/<id> too; responses still go once to oc2/rsp.
  assert.deepEqual(site.subscriptions('producer', 'p1'), ['site-a/oc2/rsp', 'site-a/oc2/rsp/p1', 'site-a/oc2/rsp/device/p1'])
  assert.equal(site.responses, 'shared')
  assert.deepEqual(site.responseTopicsTo('p1'), ['site-a/oc2/rsp'])
  assert.equal(site.allCommands(), 'site-a/oc2/cmd/all')
  assert.equal(site.allResponses(), 'site-a/oc2/rsp')
  assert.equal(site.profileCommands('slpf'), 'site-a/oc2/cmd/ap/slpf')
  assert.equal(site.deviceCommands('fw-1'), 'site-a/oc2/cmd/device/fw-1')
})

test('topics: the polite rule for commands, and response topics', () => {
  const t = new Topics()
  assert.deepEqual(t.commandTopics(request()), ['oc2/cmd/all'])
  assert.deepEqual(t.commandTopics(request(null, 'slpf')), ['oc2/cmd/ap/slpf'])
  assert.deepEqual(t.commandTopics(request(['d1', 'd2'], 'slpf')), ['oc2/cmd/device/d1', 'oc2/cmd/device/d2'])
  const rsp = { headers: { request_id: 'r', from: 'fw-1', to: ['p1'] }, body: { openc2: { response: { status: 200 } } } }
  // Published once, on oc2/rsp, which every producer subscribes (MQTT-T 3.2).
  assert.equal(t.responses, 'shared')
  assert.deepEqual(t.responseTopics(rsp), ['oc2/rsp'])
  assert.deepEqual(t.responseTopicsTo('oc2/rsp/p01'), ['oc2/rsp'])
  assert.deepEqual(t.responseTopicsTo(null), ['oc2/rsp'])
  const both = new Topics({ responseTopics: 'both' })
  assert.deepEqual(both.responseTopics(rsp), ['oc2/rsp', 'oc2/rsp/p1'])
  assert.deepEqual(both.responseTopicsTo('oc2/rsp/p01'), ['oc2/rsp', 'oc2/rsp/p01'])
})

test('topics: responseTopics chooses where responses go', () => {
  const rsp = { headers: { request_id: 'r', from: 'fw-1', to: ['p1'] }, body: { openc2: { response: { status: 200 } } } }
  const both = new Topics({ responseTopics: 'both' })
  assert.equal(both.responses, 'both')
  assert.equal(both.peer, 'spec')
  assert.deepEqual(both.responseTopics(rsp), ['oc2/rsp', 'oc2/rsp/p1'])
  const producer = new Topics({ responseTopics: 'producer', prefix: 'site-a' })
  assert.deepEqual(producer.responseTopics(rsp), ['site-a/oc2/rsp/p1'])
  // Without a producer to address, the answer still reaches oc2/rsp.
  assert.deepEqual(producer.responseTopicsTo(null), ['site-a/oc2/rsp'])
  assert.deepEqual(new Topics({ responseTopics: 'shared' }).responseTopics(rsp), ['oc2/rsp'])
  assert.throws(() => new Topics({ responseTopics: 'twice' }), {
    code: 'ERR_INVALID_ARG_VALUE', message: /The options.responseTopics is invalid: unknown response topics 'twice'; expected shared, producer or both/
  })
})

test('topics: peer sets its topics and its response topics', () => {
  const rsp = { headers: { request_id: 'r', from: 'fw-1', to: ['orch@10.0.0.1:1883'] }, body: { openc2: { response: { status: 200 } } } }
  // The OIF orchestrator listens on oc2/rsp/<its id>: its peer answers on both.
  const oif = new Topics({ peer: 'oif' })
  assert.deepEqual([oif.peer, oif.responses], ['oif', 'both'])
  assert.deepEqual(oif.responseTopics(rsp), ['oc2/rsp', 'oc2/rsp/orch'])
  // responseTopics overrides the peer's choice.
  assert.deepEqual(new Topics({ peer: 'oif', responseTopics: 'shared' }).responseTopics(rsp), ['oc2/rsp'])
  // yuuki consumers listen on oc2/cmd: commands go there too.
  assert.deepEqual(new Topics({ peer: 'yuuki' }).commandTopics(request()), ['oc2/cmd/all', 'oc2/cmd'])
  assert.deepEqual(new Topics({ peer: 'otupy' }).subscriptions('producer', 'p1'), ['oc2/rsp', 'oc2/rsp/p1', 'oc2/rsp/device/p1'])
  assert.throws(() => new Topics({ peer: 'mosquitto' }), {
    code: 'ERR_INVALID_ARG_VALUE', message: /The options.peer is invalid: unknown peer 'mosquitto'; expected spec, otupy, yuuki or oif/
  })
})

test('topics: bad ids are OC2_TOPIC errors that say why', () => {
  assert.throws(() => new Topics().subscriptions('consumer', 'dev#1'), {
    code: 'OC2_TOPIC', message: "invalid topic: device id 'dev#1' contains '#', which MQTT topic names forbid"
  })
  assert.throws(() => new Topics({ prefix: '$sys' }), { code: 'OC2_TOPIC', message: /must not start with '\$'/ })
  assert.throws(() => validateId('device id', ''), { code: 'OC2_TOPIC', message: 'invalid topic: device id must not be empty' })
  assert.throws(() => new Topics().subscriptions('consumer'), { code: 'OC2_CONFIG', message: 'configuration: a consumer needs a device id' })
  assert.throws(() => new Topics().deviceCommands('a+b'), { code: 'OC2_TOPIC' })
  assert.throws(() => sharedSubscription('g/1', 'oc2/cmd/all'), { code: 'OC2_TOPIC', message: /must not contain '\/'/ })
  assert.equal(validateId('device id', 'site/a'), undefined)
})

test('filters match like MQTT, shared subscriptions included', () => {
  assert.equal(filterMatches('oc2/#', 'oc2'), true)
  assert.equal(filterMatches('oc2/cmd/+', 'oc2/cmd/ap/slpf'), false)
  assert.equal(filterMatches('#', '$SYS/broker/uptime'), false)
  assert.equal(filterMatches('$share/g1/oc2/cmd/all', 'oc2/cmd/all'), true)
  assert.equal(sharedSubscription('g1', 'oc2/cmd/all'), '$share/g1/oc2/cmd/all')
})

test('correlator: an exchange completes when every responder sent a final response', () => {
  const c = new Correlator()
  c.open('r', ['a', 'b'], 100)
  assert.equal(c.isOpen('r'), true)
  assert.deepEqual(c.onResponse(response('r', 'a', 102)), { state: 'open', requestId: 'r', isFinal: false, expected: true })
  // While several responders are awaited, one nobody awaits is not counted.
  assert.deepEqual(c.onResponse(response('r', 'x', 200)), { state: 'open', requestId: 'r', isFinal: true, expected: false })
  assert.deepEqual(c.missing('r'), ['a', 'b'])
  assert.deepEqual(c.onResponse(response('r', 'a', 200)), { state: 'open', requestId: 'r', isFinal: true, expected: true })
  assert.deepEqual(c.missing('r'), ['b'])
  assert.deepEqual(c.onResponse(response('r', 'b', 200)), {
    state: 'complete', requestId: 'r', closed: { requestId: 'r', reason: 'complete', missing: [], missingCount: 0 }
  })
  assert.equal(c.size, 0)
  assert.deepEqual(c.onResponse(response('r', 'b', 200)), { state: 'unsolicited' })
  assert.equal(c.unsolicited, 1)
  assert.equal(c.missing('r'), null)
})

test('correlator: openCommand awaits what response_requested asks for', () => {
  const c = new Correlator()
  const command = (requestId, to, rr) => ({
    headers: { ...(requestId ? { request_id: requestId } : {}), to },
    body: { openc2: { request: { action: 'deny', target: { ipv4_net: '10.0.0.0/8' }, args: { response_requested: rr } } } }
  })
  assert.equal(c.openCommand(command('n', ['a'], 'none'), 100), false)
  assert.equal(c.size, 0)
  assert.equal(c.openCommand(command('k', ['a', 'b'], 'ack'), 100), true)
  assert.equal(c.onResponse(response('k', 'a', 102)).state, 'open')
  assert.equal(c.onResponse(response('k', 'b', 102)).state, 'complete')
  assert.equal(c.openCommand(command('c', ['a'], 'complete'), 100), true)
  assert.equal(c.onResponse(response('c', 'a', 102)).state, 'open')
  assert.equal(c.onResponse(response('c', 'a', 200)).state, 'complete')
  assert.throws(() => c.openCommand(command(null, ['a'], 'complete'), 100), { code: 'OC2_DECODE', message: 'headers.request_id: a command without request_id cannot be correlated' })
})

test('correlator: the last awaited responder may answer under another name', () => {
  // yuuki answers as "Yuuki", the OIF device as its MQTT client id: the
  // request_id is the command's, so the exchange completes.
  const c = new Correlator()
  c.open('r', ['c01'], 100)
  assert.deepEqual(c.onResponse(response('r', 'Yuuki', 200)), {
    state: 'complete', requestId: 'r', closed: { requestId: 'r', reason: 'complete', missing: [], missingCount: 0 }
  })
  // Forms of address of the same device match it whatever is pending.
  c.open('s', ['c01', 'c02'], 100)
  assert.deepEqual(c.onResponse(response('s', 'c02@10.0.0.2:1883', 200)), { state: 'open', requestId: 's', isFinal: true, expected: true })
  assert.deepEqual(c.missing('s'), ['c01'])
})

test('correlator: counts, deadlines, close, and no double open', () => {
  const c = new Correlator()
  c.open('n', 2, 50)
  c.open('late', ['d'], 200)
  c.open('b', null, 100)
  assert.throws(() => c.open('b', null, 100), { code: 'OC2_CONFIG', message: "configuration: an exchange with request_id 'b' is already open" })
  assert.equal(c.nextDeadline(), 50)
  assert.deepEqual(c.expire(49), [])
  assert.deepEqual(c.expire(60), [{ requestId: 'n', reason: 'deadline', missing: [], missingCount: 2 }])
  assert.deepEqual(c.close('b'), { requestId: 'b', reason: 'closed', missing: [], missingCount: 0 })
  assert.equal(c.close('b'), null)
  assert.deepEqual(c.expire(1000), [{ requestId: 'late', reason: 'deadline', missing: ['d'], missingCount: 1 }])
  assert.equal(c.nextDeadline(), null)
})

test('deduplicator: duplicates within the window are dropped, keys are 128-bit bigints', () => {
  const d = new Deduplicator({ windowMs: 1000, capacity: 10 })
  const { payload } = encode(request(['fw-1']))
  const msg = decode(payload).message
  assert.equal(d.check(msg, payload, 0), true)
  assert.equal(d.check(msg, payload, 999), false)
  assert.equal(d.check(msg, payload, 1000), true)
  assert.deepEqual(d.stats(), { checked: 3, duplicates: 1, evicted: 0, expired: 1 })
  assert.equal(d.size, 1)
  const k = Deduplicator.commandKey('p', 'r')
  assert.equal(typeof k, 'bigint')
  assert.ok(k > 0n && k < (1n << 128n))
  assert.notEqual(Deduplicator.commandKey('a', 'bc'), Deduplicator.commandKey('ab', 'c'))
  assert.notEqual(Deduplicator.responseKey(null, 'x', 102, payload), Deduplicator.responseKey(null, 'x', 200, payload))
  assert.equal(Deduplicator.payloadKey(Buffer.from('x')), Deduplicator.payloadKey(new Uint8Array([0x78])))
  assert.equal(d.checkKey(k, 5000), true)
  assert.equal(d.checkKey(k, 5001), false)
  assert.throws(() => d.checkKey(-1n, 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
})

test('deduplicator: its options are core\'s DedupOptions, a capacity of 0 refused with core\'s text', () => {
  assert.throws(() => new Deduplicator({ capacity: 0 }), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: 'The options.capacity is invalid: must be at least 1' })
  assert.throws(() => new Deduplicator({ windowMS: 5 }), { code: 'ERR_INVALID_ARG_VALUE', message: /unknown property "windowMS"; known properties: windowMs, capacity$/ })
  assert.throws(() => new Deduplicator({ capacity: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  // Past u32 (the cap this binding had of its own) is taken, as in C and Python.
  assert.equal(new Deduplicator({ windowMs: 0, capacity: 2 ** 33 }).size, 0)
})

test('deduplicator: capacity evicts the oldest first', () => {
  const d = new Deduplicator({ windowMs: 1e9, capacity: 3 })
  const keys = [0, 1, 2, 3].map((i) => Deduplicator.commandKey(null, String(i)))
  for (const k of keys) assert.equal(d.checkKey(k, 0), true)
  assert.equal(d.size, 3)
  assert.equal(d.stats().evicted, 1)
  assert.equal(d.checkKey(keys[0], 0), true, 'the oldest was evicted')
})
