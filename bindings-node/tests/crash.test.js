'use strict'
// A Node consumer killed in the middle of its work (as cli/tests/crash.rs):
// `journal` and a stable client id, handlers taking 0.5 s, SIGKILLed while
// 600 commands stream in at about 100 a second, and started again. Every
// command runs and every exchange completes; none runs twice but those the
// journal held as taken and not answered at the kill (`oc2mqtt journal
// --json`, the CLI in OC2MQTT_CLI, which `make test` builds): a handler that
// ran and was killed before its answer was journaled runs again (at least
// once, as documented), one answered before the kill never.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const { Producer, Consumer, ConsumerRules } = require('..')
const { startBroker } = require('./helpers/broker.js')

const CONSUMER = path.join(__dirname, 'fixtures', 'crash-consumer.js')
const COMMANDS = 600
const KILL_AT = 250
const RESTART_AT = 350
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

let broker
test.before(() => { broker = startBroker() })
test.after(() => broker.stop())

/** One run of crash-consumer.js; the request ids it handled are counted in `runs`. Resolves once it is ready. */
function serving (dir, runs) {
  const child = spawn(process.execPath, [CONSUMER, broker.url, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  readline.createInterface({ input: child.stdout }).on('line', (id) => runs.set(id, (runs.get(id) ?? 0) + 1))
  const exited = new Promise((resolve) => child.on('exit', resolve))
  return new Promise((resolve, reject) => {
    let err = ''
    child.stderr.on('data', (d) => {
      err += d
      if (err.includes('ready\n')) resolve({ child, exited })
    })
    child.on('exit', (code) => reject(new Error(`the consumer ended before it was ready (${code}): ${err}`)))
  })
}

/** The request ids the journal holds as taken and not answered (run again on restart). */
function takenNotAnswered (journal) {
  const cli = process.env.OC2MQTT_CLI
  assert.ok(cli && fs.existsSync(cli), `OC2MQTT_CLI must name the oc2mqtt binary (make -C bindings-node test builds it): ${cli}`)
  const lines = execFileSync(cli, ['journal', '--json', journal], { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l))
  return new Set(lines.filter((l) => l.state === 'run_again').map((l) => l.request_id))
}

async function kill ({ child, exited }) {
  child.kill('SIGKILL')
  await exited
}

test('a consumer killed mid-stream and started again loses nothing and runs nothing twice', { timeout: 180000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-node-crash-'))
  const runs = new Map()
  let consumer = await serving(dir, runs)
  const producer = new Producer({ url: broker.url, id: 'p1' })
  await producer.connect()
  const started = Date.now()
  const exchanges = []
  let killedAfter
  let taken = new Set()
  try {
    for (let i = 0; i < COMMANDS; i++) {
      const command = { action: 'deny', target: { ipv4_net: `10.0.${Math.floor(i / 250)}.${i % 250}/32` } }
      const exchange = producer.send(command, { to: 'fw-1', timeout: 30000 })
      exchanges.push(exchange.collect())
      await sleep(10)
      if (i === KILL_AT) {
        await kill(consumer)
        killedAfter = runs.size
        taken = takenNotAnswered(path.join(dir, 'journal'))
      }
      if (i === RESTART_AT) {
        // Started again while commands keep coming (its session kept them).
        consumer = await serving(dir, runs)
      }
    }
    const summaries = await Promise.all(exchanges)
    const incomplete = summaries.filter((s) => !s.complete).length
    const twice = [...runs].filter(([, n]) => n > 1)
    const answeredTwice = twice.filter(([id]) => !taken.has(id))
    const missing = summaries.filter((s) => !runs.has(s.requestId)).map((s) => s.requestId)
    console.log(`crash: ${COMMANDS} commands, consumer killed after ${killedAfter} had run; ${runs.size} ran in all, ` +
      `${twice.length} twice, ${taken.size} taken and not answered at the kill, ${incomplete} exchanges incomplete, ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s`)
    assert.ok(taken.size > 0, 'the journal held the commands being handled at the kill')
    assert.deepEqual(answeredTwice, [], 'answered before the kill, run again')
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} never ran`)
    assert.equal(runs.size, COMMANDS)
    assert.equal(incomplete, 0)
  } finally {
    await kill(consumer)
    await producer.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('journal must be a string, and is a Consumer option only', () => {
  assert.throws(() => new Consumer({ url: broker.url, deviceId: 'x', journal: 5 }), TypeError)
  // The rules decide; they keep no file.
  assert.throws(() => new ConsumerRules({ deviceId: 'x', journal: '/tmp/j' }), /unknown property "journal"/)
})
