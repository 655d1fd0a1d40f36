#!/usr/bin/env node
// Prints every OpenC2 message on the broker, pairing responses with their
// command (latency) and reporting responders that never answered; says when
// the broker goes away and comes back, and prints the library's warnings.
//
//   node monitor.mjs --url mqtt://127.0.0.1:1883 [--filter 'oc2/#'] [--count N]

import { parseArgs } from 'node:util'
import { Monitor, setLogger } from 'oc2mqtt'

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    filter: { type: 'string' },
    count: { type: 'string' }
  }
})

setLogger(console, { level: 'warn' })
const monitor = new Monitor({ url: o.url, filter: o.filter })
monitor
  .on('connect', (e) => console.log(`connected to ${e.broker} (MQTT ${e.mqttVersion})`))
  .on('offline', (e) => console.log(`offline: ${e.reason}; reconnecting`))
await monitor.connect()
console.log(`watching ${o.filter ?? 'oc2/#'} on ${o.url}`)
process.once('SIGINT', () => monitor.close())

let seen = 0
for await (const e of monitor) {
  const time = new Date(e.receivedAt ?? Date.now()).toISOString().slice(11, 23)
  switch (e.type) {
    case 'request': {
      const cmd = e.message.body.openc2.request
      console.log(`${time} REQ ${e.requestId ?? '-'} ${e.from ?? '?'} -> ${e.to?.join(',') ?? 'all'} ${cmd.action} ${Object.keys(cmd.target)[0]} [${e.topic}]`)
      break
    }
    case 'response':
      console.log(`${time} RSP ${e.requestId ?? '-'} ${e.from ?? '?'} ${e.status} ${e.latencyMs === null ? '(unpaired)' : `${e.latencyMs.toFixed(1)} ms`} [${e.topic}]`)
      break
    case 'notification':
      console.log(`${time} NTF ${e.from ?? '?'} [${e.topic}]`)
      break
    case 'undecodable':
      console.log(`${time} BAD ${e.error.message} [${e.topic}]`)
      break
    case 'unanswered':
      console.log(`UNANSWERED ${e.requestId}: ${e.missing.join(', ')}`)
      break
  }
  if (o.count !== undefined && ++seen >= Number(o.count)) break
}
await monitor.close()
