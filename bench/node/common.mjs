// What both sides of both pairs share: the standard exchange of
// bench/payloads (the SLPF deny command and a 200 with results), with
// response_requested: complete, and the MQTT-T publish properties.

import { readFileSync } from 'node:fs'

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
