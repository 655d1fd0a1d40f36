// The oc2mqtt consumer: one line of handler.

import { Consumer } from 'oc2mqtt'
import { CONSUMER_ID, RESPONSE } from './common.mjs'

const consumer = new Consumer({ url: process.argv[2], deviceId: CONSUMER_ID, profiles: ['slpf'] })
await consumer.connect()
const serving = consumer.serve(() => RESPONSE)
process.stdout.write('ready\n')
process.on('SIGTERM', async () => {
  await consumer.close()
  await serving
})
