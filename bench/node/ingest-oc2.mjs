// Monitor ingest, oc2mqtt: a Monitor delivering decoded, paired events to a
// JavaScript callback. Prints 'ready' once subscribed, then one JSON line
// once it saw argv[3] events: { events, seconds, cpuUs } from the first
// event to the last.

import { Monitor } from 'oc2mqtt'

const want = Number(process.argv[3])
const monitor = new Monitor({ url: process.argv[2] })
await monitor.connect()
let seen = 0
let paired = 0
let t0 = 0
let cpu0
const onEvent = (e) => {
  if (seen === 0) {
    t0 = performance.now()
    cpu0 = process.cpuUsage()
  }
  seen++
  if (e.pairing?.state === 'complete') paired++
  if (seen === want) {
    const seconds = (performance.now() - t0) / 1000
    const c = process.cpuUsage(cpu0)
    process.stdout.write(JSON.stringify({ events: seen, paired, seconds, cpuUs: c.user + c.system }) + '\n')
    monitor.close().then(() => process.exit(0))
  }
}
monitor.on('request', onEvent)
monitor.on('response', onEvent)
process.stdout.write('ready\n')
