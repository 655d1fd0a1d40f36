'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')

const { decode, encode } = require('..')

const command = {
  headers: { request_id: 'r-1', created: 1700000000123, from: 'producer-1', to: ['fw-1'] },
  body: { openc2: { request: { action: 'deny', target: { ipv4_net: '10.0.0.0/8' }, args: { start_time: 1700000000000, duration: 500 } } } }
}

test('encode gives a compact payload and mqtt.js publish properties', () => {
  const { payload, properties } = encode(command)
  assert.ok(Buffer.isBuffer(payload))
  // Compact, headers first; keys of opaque maps (args) come out sorted.
  assert.equal(payload.toString(), '{"headers":{"request_id":"r-1","created":1700000000123,"from":"producer-1","to":["fw-1"]},' +
    '"body":{"openc2":{"request":{"action":"deny","target":{"ipv4_net":"10.0.0.0/8"},"args":{"duration":500,"start_time":1700000000000}}}}}')
  assert.deepEqual(properties, {
    payloadFormatIndicator: true,
    contentType: 'application/openc2',
    userProperties: { msgType: 'req', encoding: 'json' }
  })
  assert.deepEqual(Object.keys(properties.userProperties), ['msgType', 'encoding'], 'msgType before encoding')
})

test('every encoding and dialect round-trips, integers staying integers', () => {
  for (const encoding of ['json', 'cbor']) {
    for (const dialect of ['spec', 'otupy']) {
      const { payload, properties } = encode(command, { encoding, dialect })
      const d = decode(payload, properties)
      assert.deepEqual(d.message, command)
      assert.equal(d.encoding, encoding)
      assert.equal(d.dialect, dialect)
      assert.equal(d.msgType, 'request')
      assert.equal(Number.isInteger(d.message.body.openc2.request.args.start_time), true)
    }
  }
  const cbor = encode(command, { encoding: 'cbor' })
  assert.equal(cbor.properties.payloadFormatIndicator, false)
})

test('the bare dialect carries the headers beside the command keys', () => {
  // `from` on every message, whatever its dialect (MQTT-T 3.2).
  const { payload } = encode(command, { dialect: 'bare' })
  assert.equal(payload.toString(), '{"action":"deny","target":{"ipv4_net":"10.0.0.0/8"},"args":{"duration":500,"start_time":1700000000000},' +
    '"request_id":"r-1","created":1700000000123,"from":"producer-1","to":["fw-1"]}')
  const d = decode(payload)
  assert.equal(d.dialect, 'bare')
  assert.deepEqual(d.message, command)
  // With no header, the bare form is the command alone, and the canonical form has no headers.
  const headerless = { body: command.body }
  const bare = encode(headerless, { dialect: 'bare' }).payload
  assert.equal(bare.toString(), '{"action":"deny","target":{"ipv4_net":"10.0.0.0/8"},"args":{"duration":500,"start_time":1700000000000}}')
  assert.deepEqual(decode(bare).message, headerless)
  assert.equal('headers' in decode(bare).message, false)
})

test('decode takes a Uint8Array and properties in pairs or in the mqtt.js shape', () => {
  const { payload } = encode(command, { encoding: 'cbor' })
  const asPairs = { payloadFormatIndicator: 0, contentType: 'application/openc2', userProperties: [['msgType', 'req'], ['encoding', 'cbor']] }
  const asMqttJs = { payloadFormatIndicator: false, userProperties: { msgType: 'req', encoding: ['cbor'] } }
  for (const p of [asPairs, asMqttJs, null, undefined]) {
    assert.equal(decode(new Uint8Array(payload), p).encoding, 'cbor')
  }
})

test('the salvage holds every field the core reads, in camel case', () => {
  const bad = Buffer.from('{"headers":{"request_id":"r2","to":["fw-1","fw-2"]},"body":{"openc2":{"request":{"action":"deny","target":{"a":1,"b":2},"args":{"response_requested":"none"}}}}}')
  assert.throws(() => decode(bad), (e) => {
    assert.deepEqual(e.salvage.to, ['fw-1', 'fw-2'])
    assert.equal(e.salvage.responseRequested, 'none')
    return true
  })
})

test('a decode error carries code, kind, path, reason and salvage', () => {
  const bad = Buffer.from('{"headers":{"request_id":"abc","from":"p9"},"body":{"openc2":{"request":{"action":"deny","target":{"a":1,"b":2}}}}}')
  assert.throws(() => decode(bad), (e) => {
    assert.ok(e instanceof Error)
    assert.equal(e.code, 'OC2_DECODE')
    assert.equal(e.message, 'body.openc2.request.target: expected exactly one key, found 2')
    assert.equal(e.kind, 'value')
    assert.equal(e.path, 'body.openc2.request.target')
    assert.equal(e.reason, 'expected exactly one key, found 2')
    assert.deepEqual(e.salvage, { requestId: 'abc', from: 'p9', dialect: 'spec', encoding: 'json', msgType: 'request', to: null, responseRequested: null })
    return true
  })
})

test('maxPayload refuses large payloads before parsing', () => {
  const { payload } = encode(command)
  assert.throws(() => decode(payload, null, { maxPayload: 10 }), {
    code: 'OC2_DECODE', kind: 'too_large', message: `payload is ${payload.length} bytes, larger than the limit of 10 bytes`
  })
  assert.equal(decode(payload, null, { maxPayload: payload.length }).dialect, 'spec')
})

test('an invalid message to encode names the field', () => {
  const bad = structuredClone(command)
  bad.body.openc2.request.args = { start_time: 1, stop_time: 2, duration: 3 }
  assert.throws(() => encode(bad), { code: 'OC2_DECODE', path: 'body.openc2.request.args', message: /at most two of start_time, stop_time and duration/ })
  const badStatus = { headers: {}, body: { openc2: { response: { status: 999 } } } }
  assert.throws(() => encode(badStatus), { code: 'OC2_DECODE', kind: 'value', message: /unknown status code 999/ })
})

test('undefined properties are skipped, as JSON.stringify does', () => {
  const m = structuredClone(command)
  m.headers.extra = undefined
  assert.deepEqual(decode(encode(m).payload).message, command)
})
