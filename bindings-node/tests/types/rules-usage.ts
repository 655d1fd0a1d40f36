// The typings of ConsumerRules, the config's peer and responseTopics, consumer
// args and producer.nextUnsolicited, as used (compiled by tests/rules.test.js).
import { ConsumerRules, Request, Producer, Consumer } from '../../index.js'
import type { Decision, Publish, Reply, Peer, ResponseTopics, Skip } from '../../index.js'

const peer: Peer = 'oif'
const where: ResponseTopics = 'both'
const rules = new ConsumerRules({ deviceId: 'fw-1', pairs: [['deny', 'ipv4_net']], args: ['x-acme'], peer, responseTopics: where })
const d: Decision = rules.onCommand('oc2/cmd/all', Buffer.from('{}'), null, false, Date.now(), 0)
const why: Skip | null = d.skipped
const text: string | null = d.reason
for (const p of d.publish) {
  const topics: string[] = p.topics
  const payload: Buffer = p.payload
  console.log(topics, payload, p.properties.userProperties, p.message.headers?.request_id)
}
if (d.execute !== null) {
  const req: Request = d.execute
  const rr: 'none' | 'ack' | 'status' | 'complete' = req.responseRequested
  const out: Publish | null = rules.answer(req, { status: 200, results: { x: 1 } })
  console.log(rr, req.command.action, req.topic, out?.topics)
}
console.log(why, text, rules.deviceId)

async function main (): Promise<void> {
  const producer = new Producer({ url: 'mqtt://127.0.0.1:1883', id: 'p', peer: 'yuuki', responseTopics: 'shared', otupyCompat: false })
  await producer.connect()
  const r: Reply | null = await producer.nextUnsolicited(1000)
  const forever: Promise<Reply | null> = producer.nextUnsolicited()
  console.log(r?.status, forever)
  const consumer = new Consumer({ url: 'mqtt://127.0.0.1:1883', deviceId: 'fw-1', args: ['x-acme.mode'] })
  await consumer.close()
}
void main
