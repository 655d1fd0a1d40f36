'use strict'
// Replies, summaries and monitor events are built on the JavaScript thread
// from JSON text in one JSON.parse where that makes the same value, and
// property by property where it would not (integers beyond 2^53, which
// are BigInts as decode() makes them). Both ways give what decode() gives.

const test = require('node:test')
const assert = require('node:assert/strict')
const mqtt = require('mqtt')

const { Producer, Monitor, decode } = require('..')
const { startBroker } = require('./helpers/broker.js')

const START = { action: 'start', target: { process: { name: 'x' } } }
const RSP = { payloadFormatIndicator: true, contentType: 'application/openc2', userProperties: { msgType: 'rsp', encoding: 'json' } }

test('replies, summaries and monitor events equal what decode() makes of the payload, big integers as BigInt', async () => {
  const broker = startBroker()
  const producer = new Producer({ url: broker.url, id: 'conv-p', topicPrefix: 'conv' })
  const monitor = new Monitor({ url: broker.url, topicPrefix: 'conv' })
  const responses = []
  monitor.on('response', (e) => responses.push(e))
  const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
  try {
    await producer.connect()
    await monitor.connect()
    // A responder by hand: it answers each command with results holding
    // a plain number, or an integer beyond 2^53 (written in the JSON text).
    const sent = []
    raw.on('message', (topic, payload) => {
      const cmd = JSON.parse(payload)
      const big = cmd.body.openc2.request.target.process.name === 'big'
      const value = big ? '1152921504606846977' : '42'
      const text = `{"headers":{"request_id":"${cmd.headers.request_id}","from":"conv-d","to":["conv-p"],"created":1700000000000},` +
        `"body":{"openc2":{"response":{"status":200,"results":{"x-conv":{"n":${value},"list":[1.5,"s",null,true]}}}}}}`
      sent.push(text)
      raw.publish('conv/oc2/rsp/conv-p', text, { qos: 1, properties: RSP })
    })
    await raw.subscribeAsync('conv/oc2/cmd/device/conv-d', { qos: 1 })

    for (const name of ['plain', 'big']) {
      const command = { ...START, target: { process: { name } } }
      const s = await producer.send(command, { to: 'conv-d' }).collect()
      assert.equal(s.complete, true)
      const expected = decode(Buffer.from(sent.at(-1))).message
      assert.deepEqual(s.responses[0].message, expected)
      assert.equal(s.responses[0].status, 200)
      assert.equal(s.responses[0].from, 'conv-d')
      assert.deepEqual(s.missing, [])
      assert.equal(s.missingCount, 0)
      const n = s.responses[0].message.body.openc2.response.results['x-conv'].n
      assert.equal(typeof n, name === 'big' ? 'bigint' : 'number')
      if (name === 'big') assert.equal(n, 1152921504606846977n)

      // The same through the async iterator of a second exchange.
      const ex = producer.send(command, { to: 'conv-d' })
      const { value: reply } = await ex.next()
      assert.deepEqual(reply.message, decode(Buffer.from(sent.at(-1))).message)
      ex.cancel()
    }
    for (let i = 0; i < 100 && responses.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(responses.length, 4)
    for (const [i, e] of responses.entries()) {
      assert.deepEqual(e.message, decode(Buffer.from(sent[i])).message)
      assert.equal(e.type, 'response')
      assert.equal(e.status, 200)
      assert.equal(e.from, 'conv-d')
      assert.deepEqual(e.to, ['conv-p'])
      assert.deepEqual(e.warnings, [])
      assert.equal(typeof e.receivedAt, 'number')
      assert.equal(e.pairing.state, 'complete')
    }
    assert.equal(typeof responses[2].message.body.openc2.response.results['x-conv'].n, 'bigint')
  } finally {
    await raw.endAsync()
    await monitor.close()
    await producer.close()
    broker.stop()
  }
})
