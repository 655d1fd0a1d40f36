'use strict'
// Wrong types to every public function throw a TypeError that names the
// argument and what was received; wrong values of the right type throw a
// TypeError (ERR_INVALID_ARG_VALUE) or RangeError (ERR_OUT_OF_RANGE).

const test = require('node:test')
const assert = require('node:assert/strict')

const oc2 = require('..')
const { decode, encode, Topics, Correlator, Deduplicator, filterMatches, validateId, sharedSubscription, Producer, Consumer, Monitor } = oc2

const msg = { headers: { request_id: 'r', from: 'p' }, body: { openc2: { response: { status: 200 } } } }
const URL = 'mqtt://127.0.0.1:9'

function typeError (fn, message, code = 'ERR_INVALID_ARG_TYPE') {
  assert.throws(fn, (e) => {
    assert.equal(e.constructor, TypeError, `${e.name}: ${e.message}`)
    assert.equal(e.code, code)
    if (message instanceof RegExp) assert.match(e.message, message)
    else assert.equal(e.message, message)
    return true
  })
}

test('decode', () => {
  typeError(() => decode(), 'The "payload" argument must be a Buffer or Uint8Array. Received undefined')
  typeError(() => decode('{}'), 'The "payload" argument must be a Buffer or Uint8Array. Received type string')
  typeError(() => decode(5), 'The "payload" argument must be a Buffer or Uint8Array. Received type number')
  typeError(() => decode(new ArrayBuffer(2)), 'The "payload" argument must be a Buffer or Uint8Array. Received an object')
  typeError(() => decode(Buffer.from('{}'), 'props'), 'The "properties" argument must be an object. Received type string')
  typeError(() => decode(Buffer.from('{}'), [1]), 'The "properties" argument must be an object. Received an array')
  typeError(() => decode(Buffer.from('{}'), { contentType: 5 }), 'The "properties" argument.contentType must be of type string. Received type number')
  typeError(() => decode(Buffer.from('{}'), { userProperties: [['a']] }), 'The "properties" argument.userProperties[0] must be a [key, value] pair of strings')
  typeError(() => decode(Buffer.from('{}'), { userProperties: { a: 1 } }), /userProperties\.a must be of type string\. Received type number/)
  typeError(() => decode(Buffer.from('{}'), null, 5), 'The "options" argument must be an object. Received type number')
  assert.throws(() => decode(Buffer.from('{}'), null, { maxPayload: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /options\.maxPayload is out of range/ })
  // Which payload formats MQTT defines is core's rule, with the text every language gives.
  assert.throws(() => decode(Buffer.from(JSON.stringify(msg)), { payloadFormatIndicator: 2 }), {
    code: 'OC2_DECODE', kind: 'content_type', message: 'properties.payload_format_indicator: expected 0 or 1, found 2'
  })
  assert.throws(() => decode(Buffer.from('{}'), { payloadFormatIndicator: 256 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
})

test('encode', () => {
  typeError(() => encode(), 'The "message" argument must be an object. Received undefined')
  typeError(() => encode('{}'), 'The "message" argument must be an object. Received type string')
  typeError(() => encode([]), 'The "message" argument must be an object. Received an array')
  typeError(() => encode(msg, 'json'), 'The "options" argument must be an object. Received type string')
  typeError(() => encode(msg, { encoding: 1 }), 'The options.encoding must be of type string. Received type number')
  typeError(() => encode(msg, { encoding: 'xml' }), "The options.encoding is invalid: unsupported encoding 'xml'; expected json or cbor", 'ERR_INVALID_ARG_VALUE')
  typeError(() => encode(msg, { dialect: 'flat' }), "The options.dialect is invalid: unknown dialect 'flat'; expected spec, otupy or bare", 'ERR_INVALID_ARG_VALUE')
  typeError(() => encode({ headers: { f: () => 1 }, body: {} }), 'message.headers.f is a function, which JSON cannot represent')
  typeError(() => encode({ headers: { n: NaN }, body: {} }), 'message.headers.n is NaN, which JSON cannot represent')
  typeError(() => encode({ headers: { n: 1n }, body: {} }), 'message.headers.n is a bigint, which JSON cannot represent')
})

test('topic helpers', () => {
  typeError(() => new Topics(5), 'The "options" argument must be an object. Received type number')
  typeError(() => new Topics({ prefix: 1 }), 'The options.prefix must be of type string. Received type number')
  typeError(() => new Topics({ otupyCompatible: 'yes' }), 'The options.otupyCompatible must be of type boolean. Received type string')
  const t = new Topics()
  typeError(() => t.subscriptions(1), 'The "role" argument must be of type string. Received type number')
  typeError(() => t.subscriptions('boss'), "The \"role\" argument must be one of 'producer', 'consumer', 'monitor'. Received 'boss'", 'ERR_INVALID_ARG_VALUE')
  typeError(() => t.subscriptions('consumer', 7), 'The "id" argument must be of type string. Received type number')
  typeError(() => t.subscriptions('consumer', 'd', 'slpf'), 'The "profiles" argument must be an array of strings. Received type string')
  typeError(() => t.subscriptions('consumer', 'd', ['slpf', 3]), 'The "profiles" argument[1] must be of type string. Received type number')
  typeError(() => t.commandTopics(null), 'The "message" argument must be an object. Received null')
  typeError(() => t.responseTopics(1), 'The "message" argument must be an object. Received type number')
  typeError(() => t.responseTopicsTo(1), 'The "producer" argument must be of type string. Received type number')
  typeError(() => t.profileCommands(), 'The "profile" argument must be of type string. Received undefined')
  typeError(() => t.deviceCommands({}), 'The "deviceId" argument must be of type string. Received an object')
  typeError(() => filterMatches('oc2/#'), 'The "topic" argument must be of type string. Received undefined')
  typeError(() => filterMatches(1, 'a'), 'The "filter" argument must be of type string. Received type number')
  typeError(() => validateId('id', null), 'The "id" argument must be of type string. Received null')
  typeError(() => sharedSubscription(1, 'a'), 'The "group" argument must be of type string. Received type number')
})

test('Correlator', () => {
  const c = new Correlator()
  typeError(() => c.open(1, null, 0), 'The "requestId" argument must be of type string. Received type number')
  typeError(() => c.open('r', 'fw-1', 0), 'The "expect" argument must be an array of responder ids, a number, or null')
  typeError(() => c.open('r', [1], 0), 'The "expect" argument[0] must be of type string. Received type number')
  typeError(() => c.open('r', null, '5'), 'The "deadline" argument must be of type number. Received type string')
  assert.throws(() => c.open('r', null, 1.5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'The "deadline" argument is out of range. It must be an integer >= 0 and <= 9007199254740991. Received 1.5' })
  assert.throws(() => c.open('r', -1, 0), { name: 'RangeError', message: /The "expect" argument is out of range/ })
  typeError(() => c.onResponse('x'), 'The "message" argument must be an object. Received type string')
  typeError(() => c.close(), 'The "requestId" argument must be of type string. Received undefined')
  typeError(() => c.expire(null), 'The "now" argument must be of type number. Received null')
  typeError(() => c.missing(2), 'The "requestId" argument must be of type string. Received type number')
  typeError(() => c.isOpen(true), 'The "requestId" argument must be of type string. Received type boolean')
})

test('Deduplicator', () => {
  typeError(() => new Deduplicator('60s'), 'The "options" argument must be an object. Received type string')
  typeError(() => new Deduplicator({ windowMs: '60' }), 'The options.windowMs must be of type number. Received type string')
  const d = new Deduplicator()
  typeError(() => d.check(msg, 'payload', 0), 'The "payload" argument must be a Buffer or Uint8Array. Received type string')
  typeError(() => d.check(msg, Buffer.alloc(1)), 'The "now" argument must be of type number. Received undefined')
  typeError(() => d.checkKey(5, 0), 'The "key" argument must be of type bigint (from a Deduplicator key function)')
  typeError(() => Deduplicator.commandKey(1, 'r'), 'The "from" argument must be of type string. Received type number')
  typeError(() => Deduplicator.responseKey(null, 'r', '200', Buffer.alloc(0)), 'The "status" argument must be of type number. Received type string')
  typeError(() => Deduplicator.payloadKey([1, 2]), 'The "payload" argument must be a Buffer or Uint8Array. Received an array')
})

test('client constructors', () => {
  for (const Cls of [Producer, Consumer, Monitor]) {
    typeError(() => new Cls(), 'The "config" argument must be an object. Received undefined')
    typeError(() => new Cls('mqtt://x'), 'The "config" argument must be an object. Received type string')
  }
  typeError(() => new Producer({ url: URL }), 'The config.id must be of type string. Received undefined')
  typeError(() => new Producer({ id: 'p' }), 'The config must have a "url" (string) or "brokers" (array of strings)')
  typeError(() => new Producer({ id: 'p', url: URL, brokers: [URL] }), 'The config must have either "url" or "brokers", not both', 'ERR_INVALID_ARG_VALUE')
  typeError(() => new Producer({ id: 'p', url: URL, keepalive: 5 }), /The "config" argument has an unknown property "keepalive"; known properties: url, brokers/, 'ERR_INVALID_ARG_VALUE')
  typeError(() => new Producer({ id: 'p', url: URL, keepAliveSecs: '5' }), 'The config.keepAliveSecs must be of type number. Received type string')
  typeError(() => new Producer({ id: 'p', url: URL, insecureSkipVerify: 1 }), 'The config.insecureSkipVerify must be of type boolean. Received type number')
  typeError(() => new Producer({ id: 'p', url: URL, mqttVersion: '6' }), "The config.mqttVersion is invalid: unknown MQTT version '6'; expected 5, 3.1.1 or auto", 'ERR_INVALID_ARG_VALUE')
  typeError(() => new Producer({ id: 'p', url: URL, brokers: undefined, caFile: 1 }), 'The config.caFile must be of type string. Received type number')
  typeError(() => new Consumer({ url: URL }), 'The config.deviceId must be of type string. Received undefined')
  typeError(() => new Consumer({ url: URL, deviceId: 'd', profiles: 'slpf' }), 'The config.profiles must be an array of strings. Received type string')
  typeError(() => new Consumer({ url: URL, deviceId: 'd', pairs: [['deny']] }), 'The config.pairs has the wrong shape: [0]: expected an [action, target] pair of texts, found a list of 1 item')
  typeError(() => new Consumer({ url: URL, deviceId: 'd', rateLimit: '5' }), 'The config.rateLimit must be of type number. Received type string')
  typeError(() => new Monitor({ url: URL, filter: 5 }), 'The config.filter must be of type string. Received type number')
  typeError(() => new Monitor({ url: URL, id: 'x' }), /The "config" argument has an unknown property "id"/, 'ERR_INVALID_ARG_VALUE')
})

test('client methods check their arguments before anything else', () => {
  const p = new Producer({ id: 'p', url: URL })
  typeError(() => p.send('query'), 'The "command" argument must be an object. Received type string')
  typeError(() => p.send({ action: 'query', target: { features: [] } }, { to: 5 }), 'The options.to (a string or an array of strings) must be an array of strings. Received type number')
  typeError(() => p.send({ action: 'query', target: { features: [] } }, { timeout: '1s' }), 'The options.timeout must be of type number. Received type string')
  typeError(() => p.send({ action: 'query', target: { features: [] } }, { signal: {} }), 'The "options.signal" property must be an instance of AbortSignal.')
  typeError(() => p.send({ action: 'query', target: { features: [] } }, { tiemout: 5 }), /The "options" argument has an unknown property "tiemout"/, 'ERR_INVALID_ARG_VALUE')
  const c = new Consumer({ deviceId: 'd', url: URL })
  typeError(() => c.serve(), 'The "handler" argument must be a function. Received undefined')
  typeError(() => c.serve({}), 'The "handler" argument must be a function. Received object')
})
