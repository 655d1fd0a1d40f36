// What both sides of both pairs share: the standard exchange of
// bench/payloads (the SLPF deny command and a 200 with results), with
// response_requested: complete, and the MQTT-T publish properties.

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'

const payload = (name) => JSON.parse(readFileSync(new URL(`../payloads/${name}`, import.meta.url), 'utf8'))

export const COMMAND = payload('deny_command.json').body.openc2.request
COMMAND.args.response_requested = 'complete'
export const RESPONSE = payload('ok_response.json').body.openc2.response

export const CONSUMER_ID = 'sfslpfcons.example.com'
export const PRODUCER_ID = 'sfslpfprod.example.com'

/** MQTT v5 PUBLISH properties of MQTT-T 3.4, as mqtt.js takes them. */
export const props = (msgType) => ({
  payloadFormatIndicator: true,
  contentType: 'application/openc2',
  userProperties: { msgType, encoding: 'json' }
})

/** The hand-written mqtt.js producer (bench.mjs, profile-seq.mjs): publish, then match responses by request_id. */
export async function mqttjsProducer (url, { nodelay = false, clientId = `bench-mqttjs-producer-${process.pid}` } = {}) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId })
  if (nodelay) client.stream.setNoDelay(true)
  await client.subscribeAsync(['oc2/rsp', `oc2/rsp/${PRODUCER_ID}`], { qos: 1, nl: true, rap: true })
  const pending = new Map()
  client.on('message', (topic, payload, packet) => {
    if (packet.properties?.userProperties?.msgType !== 'rsp') return
    let msg
    try {
      msg = JSON.parse(payload)
    } catch {
      return
    }
    const done = pending.get(msg.headers?.request_id)
    // The response comes on oc2/rsp and oc2/rsp/<id>: the first copy completes it.
    if (done !== undefined) {
      pending.delete(msg.headers.request_id)
      done(msg)
    }
  })
  const REQ = props('req')
  return {
    send () {
      const id = randomUUID()
      const msg = { headers: { request_id: id, created: Date.now(), from: PRODUCER_ID, to: [CONSUMER_ID] }, body: { openc2: { request: COMMAND } } }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => { pending.delete(id); reject(new Error('timeout')) }, 10000)
        pending.set(id, (rsp) => {
          clearTimeout(timer)
          if (rsp.body?.openc2?.response?.status !== 200) reject(new Error('bad response'))
          else resolve()
        })
        client.publish(`oc2/cmd/device/${CONSUMER_ID}`, JSON.stringify(msg), { qos: 1, properties: REQ })
      })
    },
    close: () => client.endAsync()
  }
}
