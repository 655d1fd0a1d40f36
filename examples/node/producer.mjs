#!/usr/bin/env node
// Sends one OpenC2 command and prints every response as it arrives.
//
//   node producer.mjs --url mqtt://127.0.0.1:1883 --to fw-1 --action query --target '{"features":["versions","profiles"]}'
//
// Without --to the command is a broadcast (oc2/cmd/all, or oc2/cmd/ap/<profile>
// with --profile) and the exchange lasts until --timeout (or --expect answers).

import { parseArgs } from 'node:util'
import { Producer } from 'oc2mqtt'

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    id: { type: 'string', default: `producer-${process.pid}` },
    to: { type: 'string', multiple: true },
    profile: { type: 'string' },
    action: { type: 'string', default: 'query' },
    target: { type: 'string', default: '{"features":["versions","profiles","pairs"]}' },
    args: { type: 'string' },
    timeout: { type: 'string', default: '5000' },
    expect: { type: 'string' },
    encoding: { type: 'string', default: 'json' },
    dialect: { type: 'string', default: 'spec' }
  }
})

const command = { action: o.action, target: JSON.parse(o.target), ...(o.args ? { args: JSON.parse(o.args) } : {}) }
const producer = new Producer({ url: o.url, id: o.id })
await producer.connect()
// Ctrl-C cancels the exchange instead of killing the process mid-way.
const ac = new AbortController()
process.once('SIGINT', () => ac.abort())
const exchange = producer.send(command, {
  to: o.to, profile: o.profile, timeout: Number(o.timeout), expect: o.expect ? Number(o.expect) : undefined,
  encoding: o.encoding, dialect: o.dialect, signal: ac.signal
})
console.log(`sent ${o.action} as ${await exchange.sent()}`)
try {
  for await (const reply of exchange) {
    const { status_text: text, results } = reply.message.body.openc2.response
    console.log(`${reply.from ?? '?'} ${reply.status}${text ? ` ${text}` : ''} (${reply.latencyMs.toFixed(1)} ms)${results ? ` ${JSON.stringify(results)}` : ''}`)
  }
} catch (e) {
  if (e.code !== 'ABORT_ERR') throw e
  console.log('cancelled')
}
await producer.close()
