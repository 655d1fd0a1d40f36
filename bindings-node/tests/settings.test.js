'use strict'
// Configuration and options objects are read through the core's settings
// tables (one converter per kind of setting): the names a role takes, the
// checks of each kind, and the counters come from the core, spelled in camel
// case, with Node's error classes and codes.

const test = require('node:test')
const assert = require('node:assert/strict')

const { Producer, Consumer, Monitor, ConsumerRules, encode } = require('..')

const URL = 'mqtt://127.0.0.1:9'
const QUERY = { action: 'query', target: { features: [] } }

/** The "known properties" an unknown-property error lists. */
function known (fn) {
  try {
    fn()
  } catch (e) {
    assert.equal(e.code, 'ERR_INVALID_ARG_VALUE', e.message)
    const m = /has an unknown property "nope"; known properties: (.*)$/.exec(e.message)
    assert.ok(m, e.message)
    return m[1].split(', ')
  }
  assert.fail('no error')
}

const CLIENT = ['url', 'brokers', 'clientId', 'clientIdFile', 'username', 'password', 'caFile', 'certFile', 'keyFile',
  'insecureSkipVerify', 'keepAliveSecs', 'sessionExpirySecs', 'qos', 'mqttVersion', 'messageExpirySecs', 'topicPrefix',
  'otupyCompat', 'peer', 'responseTopics', 'connectTimeoutSecs', 'maxPayload']
const CONSUMER = ['deviceId', 'profiles', 'pairs', 'args', 'rateLimit', 'group', 'handleFeatures', 'freshnessSecs']

test('each role takes the settings of the core tables, in camel case, and its own properties', () => {
  assert.deepEqual(known(() => new Producer({ url: URL, id: 'p', nope: 1 })), [...CLIENT, 'id'])
  assert.deepEqual(known(() => new Monitor({ url: URL, nope: 1 })), [...CLIENT, 'filter', 'pairingWindowMs'])
  assert.deepEqual(known(() => new Consumer({ url: URL, deviceId: 'd', nope: 1 })), [...CLIENT, ...CONSUMER, 'handlerTimeoutSecs', 'journal'])
  // The sans-IO rules take a consumer's settings but a connected one's, and the topic scheme's.
  assert.deepEqual(known(() => new ConsumerRules({ deviceId: 'd', nope: 1 })), [...CONSUMER, 'peer', 'responseTopics'])
  const p = new Producer({ url: URL, id: 'p' })
  assert.deepEqual(known(() => p.send(QUERY, { nope: 1 })), ['to', 'profile', 'timeout', 'expect', 'encoding', 'dialect', 'signal'])
})

test('every listed setting is taken with a value of its kind', () => {
  const c = new Consumer({
    url: URL,
    deviceId: 'd',
    clientId: 'c-1',
    clientIdFile: '/tmp/never-read',
    username: 'u',
    password: 'p',
    insecureSkipVerify: true,
    keepAliveSecs: 30,
    sessionExpirySecs: 0,
    qos: 2,
    mqttVersion: 5,
    messageExpirySecs: 60,
    topicPrefix: 'site',
    otupyCompat: false,
    peer: 'spec',
    responseTopics: 'both',
    connectTimeoutSecs: 5,
    maxPayload: 1024,
    profiles: ['slpf'],
    pairs: { deny: ['ipv4_net'] },
    args: ['x-acme'],
    rateLimit: 0.5,
    group: 'g',
    handleFeatures: true,
    freshnessSecs: 0,
    handlerTimeoutSecs: 1.5,
    journal: '/tmp/never-opened'
  })
  assert.equal(c.deviceId, 'd')
  assert.equal(c.freshnessSecs, 0)
  // Options taken, a send refused only for want of a connection.
  const p = new Producer({ brokers: [URL], id: 'p', mqttVersion: '3.1.1' })
  assert.throws(() => p.send(QUERY, { to: 'fw-1', profile: 'slpf', timeout: 250, expect: 1, encoding: 'cbor', dialect: 'otupy' }), { code: 'OC2_CLOSED' })
  assert.throws(() => p.send(QUERY, { to: ['fw-1', 'fw-2'] }), { code: 'OC2_CLOSED' })
})

test('each kind is checked with Node error classes and the setting named as JavaScript spells it', () => {
  const bad = (config, name, code, message) => assert.throws(() => new Producer({ url: URL, id: 'p', ...config }), (e) => {
    assert.equal(e.name, name, e.message)
    assert.equal(e.code, code, e.message)
    assert.match(e.message, message)
    return true
  })
  bad({ qos: 256 }, 'RangeError', 'ERR_OUT_OF_RANGE', /^The config\.qos is out of range\. It must be an integer >= 0 and <= 255\. Received 256$/)
  bad({ keepAliveSecs: 1.5 }, 'RangeError', 'ERR_OUT_OF_RANGE', /config\.keepAliveSecs is out of range/)
  bad({ maxPayload: 2 ** 60 }, 'RangeError', 'ERR_OUT_OF_RANGE', /<= 9007199254740991/)
  bad({ brokers: URL, url: undefined }, 'TypeError', 'ERR_INVALID_ARG_TYPE', /^The config\.brokers must be an array of strings\. Received type string$/)
  bad({ mqttVersion: true }, 'TypeError', 'ERR_INVALID_ARG_TYPE', /^The config\.mqttVersion must be of type string\. Received type boolean$/)
  bad({ mqttVersion: 6 }, 'TypeError', 'ERR_INVALID_ARG_VALUE', /^The config\.mqttVersion is invalid: unknown MQTT version '6'; expected 5, 3\.1\.1 or auto$/)
  bad({ responseTopics: 'twice' }, 'TypeError', 'ERR_INVALID_ARG_VALUE', /^The config\.responseTopics is invalid: unknown response topics 'twice'/)
  bad({ clientIdFile: 5 }, 'TypeError', 'ERR_INVALID_ARG_TYPE', /^The config\.clientIdFile must be of type string\. Received type number$/)
  assert.throws(() => new Consumer({ url: URL, deviceId: 'd', rateLimit: 0 }), { name: 'RangeError', message: 'The config.rateLimit must be a finite number greater than 0. Received 0' })
  // The range is core's (finite, not negative), as in Python and C: 0 is taken.
  assert.throws(() => new Consumer({ url: URL, deviceId: 'd', handlerTimeoutSecs: -Infinity }), { name: 'RangeError', message: 'The config.handlerTimeoutSecs must be a finite, non-negative number of seconds. Received -Infinity' })
  assert.throws(() => new Consumer({ url: URL, deviceId: 'd', handlerTimeoutSecs: -0.5 }), { name: 'RangeError', message: 'The config.handlerTimeoutSecs must be a finite, non-negative number of seconds. Received -0.5' })
  assert.doesNotThrow(() => new Consumer({ url: URL, deviceId: 'd', handlerTimeoutSecs: 0 }))
  assert.throws(() => new Consumer({ url: URL, deviceId: 'd', pairs: [['deny', '']] }), { code: 'ERR_INVALID_ARG_VALUE', message: /^The config\.pairs is invalid: pair 'deny:': expected ACTION:TARGET/ })
  assert.throws(() => new ConsumerRules({ deviceId: 'd', freshnessSecs: '5' }), { code: 'ERR_INVALID_ARG_TYPE', message: /^The options\.freshnessSecs must be of type number/ })
  const p = new Producer({ url: URL, id: 'p' })
  // A time in JavaScript is in milliseconds: whole ones.
  assert.throws(() => p.send(QUERY, { timeout: 1.5 }), { name: 'RangeError', message: /^The options\.timeout is out of range/ })
  assert.throws(() => p.send(QUERY, { expect: -1 }), { name: 'RangeError', message: /^The options\.expect is out of range/ })
  // A count of 0 responders is refused by core's table, as in every language.
  assert.throws(() => p.send(QUERY, { expect: 0 }), { code: 'ERR_INVALID_ARG_VALUE', message: 'The options.expect is invalid: must be at least 1' })
  // Only the recipients take one text alone.
  assert.throws(() => new ConsumerRules({ deviceId: 'd', args: 'x-acme' }), { code: 'ERR_INVALID_ARG_TYPE', message: /^The options\.args must be an array of strings/ })
  // Absent, null and undefined leave the core's default.
  assert.throws(() => new Producer({ url: URL, id: 'p', qos: null, keepAliveSecs: undefined }).send(QUERY, { to: undefined, timeout: null }), { code: 'OC2_CLOSED' })
})

test('encode reads its encoding and dialect as a send does, and ignores other properties', () => {
  const msg = { headers: { request_id: 'r', from: 'p' }, body: { openc2: { response: { status: 200 } } } }
  const cbor = encode(msg, { encoding: 'cbor', dialect: 'otupy', whatever: 1 })
  assert.equal(cbor.properties.userProperties.encoding, 'cbor')
  assert.notEqual(cbor.payload[0], '{'.charCodeAt(0))
  assert.deepEqual(encode(msg, { encoding: null }).payload, encode(msg).payload)
})

test('stats are the core counters in camel case', () => {
  assert.deepEqual(new Producer({ url: URL, id: 'p' }).stats(), {
    mqttVersion: null,
    published: 0,
    received: 0,
    duplicates: 0,
    decodeErrors: 0,
    unsolicited: 0,
    reconnects: 0,
    publishErrors: 0,
    discarded: 0,
    stale: 0
  })
})
