// Monitor ingest, mqtt.js: a subscriber to oc2/# doing JSON.parse on every
// payload, as a dashboard written on mqtt.js would (noDelay on). Same
// output as ingest-oc2.mjs.

import mqtt from 'mqtt'

const want = Number(process.argv[3])
const client = await mqtt.connectAsync(process.argv[2], { protocolVersion: 5, clientId: `bench-ingest-mqttjs-${process.pid}` })
client.stream.setNoDelay(true)
await client.subscribeAsync('oc2/#', { qos: 1 })
let seen = 0
let t0 = 0
let cpu0
client.on('message', (topic, payload) => {
  let msg
  try {
    msg = JSON.parse(payload)
  } catch {
    return
  }
  if (seen === 0) {
    t0 = performance.now()
    cpu0 = process.cpuUsage()
  }
  if (msg.headers !== undefined) seen++
  if (seen === want) {
    const seconds = (performance.now() - t0) / 1000
    const c = process.cpuUsage(cpu0)
    process.stdout.write(JSON.stringify({ events: seen, seconds, cpuUs: c.user + c.system }) + '\n')
    client.end(false, () => process.exit(0))
  }
})
process.stdout.write('ready\n')
