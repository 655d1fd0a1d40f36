#!/usr/bin/env node
// A device that answers OpenC2 commands: query features is answered from its
// configuration, deny/allow are "executed", anything else it declared gets a
// 200, and a failing handler answers 500. Retained commands and commands
// older than the freshness window (--freshness seconds; 0: off) never reach
// it. Ctrl-C closes it.
//
//   node consumer.mjs --url mqtt://127.0.0.1:1883 --id fw-1 --profile slpf

import { parseArgs } from 'node:util'
import { Consumer } from 'oc2mqtt'

const { values: o } = parseArgs({
  options: {
    url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    id: { type: 'string', default: 'fw-1' },
    profile: { type: 'string', multiple: true, default: ['slpf'] },
    delay: { type: 'string', default: '0' },
    freshness: { type: 'string' }
  }
})

const rules = new Map()
const consumer = new Consumer({
  url: o.url,
  deviceId: o.id,
  profiles: o.profile,
  pairs: { deny: ['ipv4_connection', 'ipv4_net'], allow: ['ipv4_connection', 'ipv4_net'], delete: ['slpf:rule_number'], start: ['process'] },
  ...(o.freshness === undefined ? {} : { freshnessSecs: Number(o.freshness) })
})
await consumer.connect()
console.log(`${o.id} serving on ${consumer.broker} with MQTT ${consumer.stats().mqttVersion}`)
process.once('SIGINT', () => consumer.close())

await consumer.serve(async (command, incoming) => {
  console.log(`${incoming.message.headers?.from ?? '?'} -> ${command.action} ${Object.keys(command.target)[0]} (${incoming.topic})`)
  if (Number(o.delay) > 0) {
    await incoming.reply({ status: 102, status_text: 'working' })
    await new Promise((resolve) => setTimeout(resolve, Number(o.delay)))
  }
  switch (command.action) {
    case 'deny':
    case 'allow': {
      const number = rules.size + 1
      rules.set(number, command)
      return { status: 200, results: { slpf: { rule_number: number } } }
    }
    case 'delete': {
      const number = command.target['slpf:rule_number']
      if (!rules.delete(number)) return { status: 404, status_text: `no rule ${number}` }
      return { status: 200 }
    }
    default:
      return { status: 200 }
  }
})
console.log('closed')
