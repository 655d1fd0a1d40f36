// The hand-written consumer a Node user would write today with mqtt.js:
// subscribe to the command topics, parse the JSON, answer with the
// response on oc2/rsp and oc2/rsp/<producer>, as the spec asks.

import mqtt from 'mqtt'
import { CONSUMER_ID, RESPONSE, props } from './common.mjs'

const client = await mqtt.connectAsync(process.argv[2], { protocolVersion: 5, clientId: `bench-mqttjs-consumer-${process.pid}` })
// mqtt.js leaves Nagle's algorithm on; '--nodelay' turns it off, as a tuned hand-written client would.
if (process.argv[3] === '--nodelay') client.stream.setNoDelay(true)
await client.subscribeAsync(['oc2/cmd/all', 'oc2/cmd', `oc2/cmd/device/${CONSUMER_ID}`], { qos: 1, nl: true, rap: true })
const RSP = props('rsp')
client.on('message', (topic, payload, packet) => {
  if (packet.properties?.userProperties?.msgType !== 'req') return
  let msg
  try {
    msg = JSON.parse(payload)
  } catch {
    return
  }
  const h = msg.headers
  const request = msg.body?.openc2?.request
  if (!h || !request || (h.to && !h.to.includes(CONSUMER_ID))) return
  const response = {
    headers: { request_id: h.request_id, created: Date.now(), from: CONSUMER_ID, to: [h.from] },
    body: { openc2: { response: RESPONSE } }
  }
  const text = JSON.stringify(response)
  client.publish('oc2/rsp', text, { qos: 1, properties: RSP })
  client.publish(`oc2/rsp/${h.from}`, text, { qos: 1, properties: RSP })
})
process.stdout.write('ready\n')
process.on('SIGTERM', () => client.end(false, () => process.exit(0)))
