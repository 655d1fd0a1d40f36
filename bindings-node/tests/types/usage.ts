// Compiled with `tsc --noEmit --strict` by tests/types.test.js: the typings
// must describe the API as the README uses it.
import {
  decode, encode, Topics, Correlator, Deduplicator, filterMatches, validateId,
  Producer, Consumer, Monitor, Exchange, setLogger, __napiBindingTarget,
  type Message, type Reply, type Summary, type MonitorEvent, type DecodeError, type Stats, type ResponseEvent,
  type ConnectEvent, type ReconnectError, type LogRecord,
} from '../..'

const msg: Message = {
  headers: { request_id: 'r1', from: 'p1', to: ['fw-1'], created: 1 },
  body: { openc2: { request: { action: 'query', target: { features: ['versions'] } } } },
}
const { payload, properties } = encode(msg, { encoding: 'cbor', dialect: 'otupy' })
const decoded = decode(payload, properties)
const kind: 'request' | 'response' | 'notification' = decoded.msgType
try {
  decode(Buffer.from('{'))
} catch (e) {
  const err = e as DecodeError
  const where: string = err.path
  void where
}
const t = new Topics({ prefix: 'site' })
const oif = new Topics({ peer: 'oif', responseTopics: 'both' })
const suited: 'spec' | 'otupy' | 'yuuki' | 'oif' = oif.peer
const responses: 'shared' | 'producer' | 'both' = oif.responses
void suited
void responses
const subs: string[] = t.subscriptions('consumer', 'fw-1', ['slpf'])
const ok: boolean = filterMatches('oc2/#', subs[0])
validateId('device id', 'fw-1')
const c = new Correlator()
c.open('r1', ['fw-1'], 1000)
const outcome = c.onResponse(msg)
if (outcome.state === 'complete') console.log(outcome.closed.missing)
const d = new Deduplicator({ windowMs: 1000 })
const fresh: boolean = d.check(msg, payload, 0)
const key: bigint = Deduplicator.commandKey('p1', 'r1')

async function clients (): Promise<void> {
  const producer = new Producer({ url: 'mqtt://127.0.0.1:1', id: 'p1', keepAliveSecs: 30 })
  await producer.connect()
  const ac = new AbortController()
  const ex: Exchange = producer.send({ action: 'deny', target: { ipv4_net: '10.0.0.0/8' } }, { to: 'fw-1', timeout: 500, signal: ac.signal })
  for await (const r of ex) {
    const reply: Reply = r
    console.log(reply.status, reply.latencyMs)
  }
  const s: Summary = await producer.send(msg).collect()
  const once: Summary = await producer.sendCollect({ action: 'deny', target: { ipv4_net: '10.0.0.0/8' } }, { to: ['fw-1', 'fw-2'], expect: 2, signal: ac.signal })
  console.log(once.missingCount)
  const st: Stats = producer.stats()
  const version: '5' | '3.1.1' | null = st.mqttVersion
  const where: string | null = producer.broker
  console.log(s.complete, st.published, st.stale, version, where)

  const consumer = new Consumer({ url: 'mqtt://127.0.0.1:1', deviceId: 'fw-1', pairs: [['deny', 'ipv4_net']], freshnessSecs: 600, journal: '/var/lib/fw-1/oc2.journal' })
  const window: number = consumer.freshnessSecs
  await consumer.connect()
  const serving: Promise<void> = consumer.serve(async (command, incoming) => {
    if (command.action === 'deny') {
      await incoming.reply({ status: 102 })
      return { status: 200, results: { done: true } }
    }
    if (command.action === 'allow') return 404
    throw new Error('no')
  })
  // A plain handler may answer with a status code, or nothing for a 200.
  const syncServing: Promise<void> = consumer.serve((command) => command.action === 'deny' ? 404 : undefined)
  await consumer.close()
  await serving
  await syncServing
  console.log(window)

  const monitor = new Monitor({ url: 'mqtt://127.0.0.1:1', filter: 'oc2/#' })
  monitor.on('response', (e: ResponseEvent) => console.log(e.latencyMs))
  await monitor.connect()
  for await (const ev of monitor) {
    const e: MonitorEvent = ev
    if (e.type === 'undecodable') console.log(e.error.kind)
    break
  }
  await monitor.close()
}

async function connectionEvents (): Promise<void> {
  setLogger(console, { level: 'warn' })
  setLogger((r: LogRecord) => console.error(r.level, r.target, r.message, r.fields.why), { level: 'debug' })
  setLogger(null)
  await using producer = new Producer({ url: 'mqtt://127.0.0.1:1', id: 'p1' })
  producer
    .on('connect', (e: ConnectEvent) => console.log(e.broker, e.mqttVersion, e.sessionResumed))
    .on('offline', (e) => console.log(e.reason.length))
    .on('reconnect', (e) => console.log(e.attempt + 1))
    .on('error', (e: ReconnectError) => console.log(e.code, e.broker))
    .on('close', () => {})
    .on('end', () => {})
  await producer.connect()
  await using consumer = new Consumer({ url: 'mqtt://127.0.0.1:1', deviceId: 'fw-1' })
  consumer.once('offline', (e) => console.log(e.reason))
  await using monitor = new Monitor({ url: 'mqtt://127.0.0.1:1' })
  monitor.on('connect', (e) => console.log(e.mqttVersion)).on('response', (e) => console.log(e.status))
  const target: 'native' | 'wasm32-wasi' | 'wasm32-wasip1' = __napiBindingTarget
  console.log(target)
}
void clients, connectionEvents, kind, ok, fresh, key
