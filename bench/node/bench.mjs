#!/usr/bin/env node
// oc2mqtt from Node against what a Node user would write with mqtt.js, and
// against the Rust core in the same topology, in one run, on throwaway
// Mosquittos (TCP_NODELAY) started by broker.py.
//
// Exchanges: a producer here and a consumer in a child process; sequential
// (one exchange in flight) and pipelined (64 in flight). For each: the rate,
// latency, and the CPU µs per exchange of each side (process.cpuUsage() of
// this process, /proc/<pid>/stat of the child). The Rust core's figure is
// bench/rust's `serve-split` (sequential, consumer serve(handler) in a child
// process) and `pipe-split` (pipelined), run in the same rounds (that
// binary starts its own Mosquitto with the same configuration).
//
// Monitor ingest: a C publisher (libmosquitto, ingest_publisher.c) sends
// COUNT commands and their responses while the subscriber (a child process)
// is stopped, then lets it go on and counts what it delivers per second: the Node Monitor (decoded, paired
// events to a callback), mqtt.js with JSON.parse, and the Rust core
// (`oc2mqtt monitor --json`, which also prints every event).
//
//   node bench.mjs [--seconds 5] [--repeat 3] [--inflight 64] [--ingest-count 20000]
//                  [--only exchange|ingest|SCENARIO,...] [--write] [--no-build]
//                  [--call sendCollect|send]
//
// --call: how the oc2mqtt producer makes an exchange: `sendCollect(...)`
// (the default) or `send(...).collect()` (default from $OC2_BENCH_CALL, so
// that ab.sh's AB_ENV_A/AB_ENV_B can compare the two on one build).
// --write puts the tables in RESULTS.md. --no-build uses the Rust binaries
// as built (ab.sh passes it: a core edited meanwhile is not rebuilt between rounds). Hold the shared benchmark lock:
// `flock /tmp/oc2mqtt-bench.lock node bench.mjs ...`.

import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import mqtt from 'mqtt'
import { Producer } from 'oc2mqtt'
import { COMMAND, CONSUMER_ID, PRODUCER_ID, RESPONSE, mqttjsProducer } from './common.mjs'

const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '3' },
    inflight: { type: 'string', default: '64' },
    'ingest-count': { type: 'string', default: '20000' },
    only: { type: 'string', default: '' },
    write: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    call: { type: 'string', default: process.env.OC2_BENCH_CALL ?? 'sendCollect' }
  }
})
if (!['sendCollect', 'send'].includes(o.call)) throw new Error(`--call: sendCollect or send, not ${o.call}`)
const CALL = o.call
const SECONDS = Number(o.seconds)
const INFLIGHT = Number(o.inflight)
const INGEST_COUNT = Number(o['ingest-count'])
const HERE = path.dirname(new URL(import.meta.url).pathname)
const ROOT = path.join(HERE, '..', '..')
const BROKER_PY = path.join(ROOT, 'tests', 'broker', 'broker.py')
const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache', 'oc2mqtt-target')
const RUST_BENCH = path.join(TARGET, 'release', 'oc2mqtt-bench')
const CLI = path.join(TARGET, 'release', 'oc2mqtt')
const PUBLISHER = path.join(TARGET, 'release', 'ingest-publisher')

function build () {
  execFileSync('cargo', ['build', '--release', '-q', '-p', 'oc2mqtt-bench', '-p', 'oc2mqtt-cli'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, CARGO_TARGET_DIR: TARGET } })
  execFileSync('cc', ['-O2', '-Wall', '-o', PUBLISHER, path.join(HERE, 'ingest_publisher.c'), '-lmosquitto'], { stdio: 'inherit' })
}

function startBroker () {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-bench-node-'))
  const info = JSON.parse(execFileSync('python3', [BROKER_PY, 'start', '--dir', dir], { encoding: 'utf8' }).trim().split('\n').pop())
  return {
    url: `mqtt://127.0.0.1:${info.port}`,
    port: info.port,
    pid: info.pid,
    stop: () => { execFileSync('python3', [BROKER_PY, 'stop', '--pid', String(info.pid)]); rmSync(dir, { recursive: true, force: true }) }
  }
}

/** CPU time (user + system) of a process so far, in µs. */
function cpuUsOf (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 1e6 / 100 // utime, stime in USER_HZ (100)
}
const cpuUsSelf = () => { const c = process.cpuUsage(); return c.user + c.system }

function startChild (script, args) {
  const child = spawn(process.execPath, [path.join(HERE, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  const lines = []
  const waiters = []
  child.stdout.on('data', (d) => {
    out += d
    let i
    while ((i = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, i))
      out = out.slice(i + 1)
      while (waiters.length > 0 && lines.length > 0) waiters.shift().resolve(lines.shift())
    }
  })
  child.on('exit', (code) => { for (const w of waiters.splice(0)) w.reject(new Error(`${script} exited with ${code}`)) })
  child.line = () => lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((resolve, reject) => waiters.push({ resolve, reject }))
  return child.line().then((l) => { if (l !== 'ready') throw new Error(`${script}: ${l}`); return child })
}

async function stopChild (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.on('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

// --- the two producers ----------------------------------------------------------

/**
 * oc2mqtt's producer: `sendCollect` (one call, one Promise), or with `--call
 * send` the `send().collect()` pattern (an Exchange, then its Promise), for
 * A/B; a build without `sendCollect` takes that pattern too.
 */
async function oc2Producer (url) {
  const p = new Producer({ url, id: PRODUCER_ID })
  await p.connect()
  const OPTIONS = { to: CONSUMER_ID, timeout: 10000 }
  const check = (s) => {
    if (!s.complete || s.responses[0].status !== 200) throw new Error(`incomplete exchange: ${JSON.stringify(s)}`)
  }
  const send = CALL === 'sendCollect' && typeof p.sendCollect === 'function'
    ? async () => check(await p.sendCollect(COMMAND, OPTIONS))
    : async () => check(await p.send(COMMAND, OPTIONS).collect())
  return { send, close: () => p.close() }
}

// --- measurements -----------------------------------------------------------------

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** CPU of this process and of the consumer child over a measured window, per exchange. */
function cpuMeter (child) {
  const self0 = cpuUsSelf()
  const child0 = cpuUsOf(child.pid)
  return (n) => ({ cpuProducer: (cpuUsSelf() - self0) / n, cpuConsumer: (cpuUsOf(child.pid) - child0) / n })
}

async function sequential (producer, child) {
  const stopWarm = performance.now() + 500
  while (performance.now() < stopWarm) await producer.send()
  const lat = []
  const cpu = cpuMeter(child)
  const start = performance.now()
  const end = start + SECONDS * 1000
  while (performance.now() < end) {
    const t = performance.now()
    await producer.send()
    lat.push(performance.now() - t)
  }
  const elapsed = (performance.now() - start) / 1000
  const c = cpu(lat.length)
  lat.sort((a, b) => a - b)
  return { rate: lat.length / elapsed, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), ...c }
}

async function pipelined (producer, child) {
  let done = 0
  let measuring = false
  const warmEnd = performance.now() + 500
  let start = 0
  let end = Infinity
  let cpu
  const worker = async () => {
    for (;;) {
      const now = performance.now()
      if (!measuring && now >= warmEnd) { measuring = true; start = now; end = now + SECONDS * 1000; cpu = cpuMeter(child) }
      if (now >= end) return
      await producer.send()
      if (measuring && performance.now() <= end) done++
    }
  }
  await Promise.all(Array.from({ length: INFLIGHT }, worker))
  return { rate: done / SECONDS, ...cpu(done) }
}

/** bench/rust's oc2mqtt-bench, one scenario once; its CPU figure covers both processes. */
function rustScenario (name) {
  const out = execFileSync(RUST_BENCH, [name, '--repeat', '1', '--seconds', String(SECONDS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const r = JSON.parse(out)[name].median
  return { rate: r.rt_per_s ?? r.exchanges_per_s, p50: r.p50_us / 1000, p99: r.p99_us / 1000, cpuBoth: r.cpu_us_per_rt_client }
}

// --- Monitor ingest -------------------------------------------------------------

const CMD_TOPIC = `oc2/cmd/device/${CONSUMER_ID}`
const RSP_TOPIC = `oc2/rsp/${PRODUCER_ID}`

function ingestTemplates (dir) {
  const cmd = { headers: { request_id: '@ID@', created: Date.now(), from: PRODUCER_ID, to: [CONSUMER_ID] }, body: { openc2: { request: COMMAND } } }
  const rsp = { headers: { request_id: '@ID@', created: Date.now(), from: CONSUMER_ID, to: [PRODUCER_ID] }, body: { openc2: { response: RESPONSE } } }
  const files = [path.join(dir, 'command.json'), path.join(dir, 'response.json')]
  writeFileSync(files[0], JSON.stringify(cmd))
  writeFileSync(files[1], JSON.stringify(rsp))
  return files
}

function publish (broker, templates) {
  const out = execFileSync(PUBLISHER, [String(broker.port), ...templates, CMD_TOPIC, RSP_TOPIC, String(INGEST_COUNT)], { encoding: 'utf8' })
  return JSON.parse(out.trim())
}

/**
 * Publishes with the subscriber stopped (SIGSTOP), so that the broker holds
 * every message for it when it goes on (SIGCONT): what it then delivers per
 * second is its own ingest capacity, not the publisher's rate.
 */
function publishStopped (child, broker, templates) {
  child.kill('SIGSTOP')
  try {
    return publish(broker, templates)
  } finally {
    child.kill('SIGCONT')
  }
}

/** A Node subscriber (ingest-*.mjs) in a child process: events/s from its first event to its last. */
async function nodeIngest (script, broker, templates) {
  const child = await startChild(script, [broker.url, String(2 * INGEST_COUNT)])
  try {
    const result = child.line()
    const pub = publishStopped(child, broker, templates)
    let timer
    const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`${script}: timed out`)), 120000) })
    const r = JSON.parse(await Promise.race([result, timeout]).finally(() => clearTimeout(timer)))
    return { rate: r.events / r.seconds, cpu: r.cpuUs / r.events, publisherRate: pub.messages / pub.seconds }
  } finally {
    await stopChild(child)
  }
}

/** The Rust core: `oc2mqtt monitor --json --count N`, its lines read (and timed) here. */
async function rustIngest (broker, templates) {
  const want = 2 * INGEST_COUNT
  const child = spawn(CLI, ['monitor', '--json', '--broker', broker.url, '--count', String(want), '--duration', '120'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let lines = 0
  let t0 = 0
  let t1 = 0
  child.stdout.on('data', (d) => {
    if (lines === 0) t0 = performance.now()
    for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++
    t1 = performance.now()
  })
  await sleep(1000) // connected and subscribed: it prints nothing before the first event
  const cpu0 = cpuUsOf(child.pid)
  let cpu1 = cpu0
  const sampler = setInterval(() => { try { cpu1 = cpuUsOf(child.pid) } catch {} }, 20)
  const pub = publishStopped(child, broker, templates)
  await exited
  clearInterval(sampler)
  if (lines < want) throw new Error(`oc2mqtt monitor printed ${lines} of ${want} events`)
  return { rate: lines / ((t1 - t0) / 1000), cpu: (cpu1 - cpu0) / lines, publisherRate: pub.messages / pub.seconds }
}

// --- the run ----------------------------------------------------------------------

const EXCHANGE = [
  { name: 'mqttjs-seq', consumer: ['consumer-mqttjs.mjs'], producer: (u) => mqttjsProducer(u), run: sequential },
  { name: 'mqttjs-nodelay-seq', consumer: ['consumer-mqttjs.mjs', '--nodelay'], producer: (u) => mqttjsProducer(u, { nodelay: true }), run: sequential },
  { name: 'oc2-seq', consumer: ['consumer-oc2.mjs'], producer: oc2Producer, run: sequential },
  { name: 'rust-seq', rust: 'serve-split' },
  { name: 'mqttjs-pipe', consumer: ['consumer-mqttjs.mjs'], producer: (u) => mqttjsProducer(u), run: pipelined },
  { name: 'mqttjs-nodelay-pipe', consumer: ['consumer-mqttjs.mjs', '--nodelay'], producer: (u) => mqttjsProducer(u, { nodelay: true }), run: pipelined },
  { name: 'oc2-pipe', consumer: ['consumer-oc2.mjs'], producer: oc2Producer, run: pipelined },
  { name: 'rust-pipe', rust: 'pipe-split' }
].map((s) => ({ ...s, group: 'exchange' }))
const INGEST = [
  { name: 'mqttjs-ingest', ingest: (b, t) => nodeIngest('ingest-mqttjs.mjs', b, t) },
  { name: 'oc2-ingest', ingest: (b, t) => nodeIngest('ingest-oc2.mjs', b, t) },
  { name: 'rust-ingest', ingest: rustIngest }
].map((s) => ({ ...s, group: 'ingest' }))
const only = o.only === '' ? [] : o.only.split(',')
const SCENARIOS = [...EXCHANGE, ...INGEST].filter((s) => only.length === 0 || only.includes(s.group) || only.includes(s.name))

if (!o['no-build']) build()
const loadBefore = os.loadavg()[0]
const broker = startBroker()
const scratch = mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-bench-ingest-'))
const templates = ingestTemplates(scratch)
const results = Object.fromEntries(SCENARIOS.map((s) => [s.name, []]))
const fmt = (r) => Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(k === 'p50' || k === 'p99' ? 3 : 0)}`).join(', ')
try {
  for (let round = 1; round <= Number(o.repeat); round++) {
    for (const s of SCENARIOS) {
      let r
      if (s.rust !== undefined) {
        r = rustScenario(s.rust)
      } else if (s.ingest !== undefined) {
        r = await s.ingest(broker, templates)
      } else {
        const consumer = await startChild(s.consumer[0], [broker.url, ...s.consumer.slice(1)])
        const producer = await s.producer(broker.url)
        r = await s.run(producer, consumer)
        await producer.close()
        await stopChild(consumer)
      }
      results[s.name].push(r)
      console.log(`round ${round} ${s.name}: ${fmt(r)} (load ${os.loadavg()[0].toFixed(1)})`)
    }
  }
} finally {
  broker.stop()
  rmSync(scratch, { recursive: true, force: true })
}

const med = (name, key) => results[name]?.length > 0 && results[name][0][key] !== undefined ? median(results[name].map((r) => r[key])) : undefined
const has = (...names) => names.every((n) => results[n]?.length > 0)
const n0 = (x) => x === undefined ? '–' : x.toFixed(0)
const lat = (name) => med(name, 'p50') === undefined ? '' : `, p50 ${med(name, 'p50').toFixed(3)} ms, p99 ${med(name, 'p99').toFixed(3)} ms`
const cell = (name) => `${n0(med(name, 'rate'))}/s${lat(name)}`
const cpuCell = (name) => med(name, 'cpuBoth') !== undefined
  ? `${n0(med(name, 'cpuBoth'))} (both)`
  : `${n0(med(name, 'cpuProducer') + med(name, 'cpuConsumer'))} (${n0(med(name, 'cpuProducer'))} + ${n0(med(name, 'cpuConsumer'))})`
const lines = []
for (const mode of ['seq', 'pipe']) {
  const [oc2, tuned, plain, rust] = ['oc2', 'mqttjs-nodelay', 'mqttjs', 'rust'].map((p) => `${p}-${mode}`)
  if (!has(oc2, tuned, plain, rust)) continue
  if (lines.length === 0) {
    lines.push('| scenario | oc2mqtt from Node | mqtt.js pair, tuned (noDelay) | mqtt.js pair, as it comes | Rust core, same topology | Node / tuned mqtt.js | Node / Rust core |')
    lines.push('|---|---|---|---|---|---|---|')
  }
  const what = mode === 'seq' ? 'sequential (1 in flight)' : `pipelined (${INFLIGHT} in flight)`
  lines.push(`| ${what} | **${cell(oc2)}** | ${cell(tuned)} | ${cell(plain)} | ${cell(rust)} | **${(med(oc2, 'rate') / med(tuned, 'rate')).toFixed(2)}×** | ${(med(oc2, 'rate') / med(rust, 'rate')).toFixed(2)}× |`)
  lines.push(`| ${what}: CPU µs per exchange, producer + consumer | **${cpuCell(oc2)}** | ${cpuCell(tuned)} | ${cpuCell(plain)} | ${cpuCell(rust)} | | ${(100 * (med(oc2, 'cpuProducer') + med(oc2, 'cpuConsumer')) / med(rust, 'cpuBoth')).toFixed(0)} % |`)
}
if (has('oc2-ingest', 'mqttjs-ingest', 'rust-ingest')) {
  if (lines.length > 0) lines.push('')
  lines.push('| Monitor ingest (commands and responses) | oc2mqtt `Monitor` from Node, decoded and paired | mqtt.js + `JSON.parse` | Rust core (`oc2mqtt monitor --json`) | Node / mqtt.js | Node / Rust core |')
  lines.push('|---|---|---|---|---|---|')
  lines.push(`| events/s | **${n0(med('oc2-ingest', 'rate'))}/s** | ${n0(med('mqttjs-ingest', 'rate'))}/s | ${n0(med('rust-ingest', 'rate'))}/s | **${(med('oc2-ingest', 'rate') / med('mqttjs-ingest', 'rate')).toFixed(2)}×** | ${(med('oc2-ingest', 'rate') / med('rust-ingest', 'rate')).toFixed(2)}× |`)
  lines.push(`| CPU µs per event, subscriber process | **${med('oc2-ingest', 'cpu').toFixed(1)}** | ${med('mqttjs-ingest', 'cpu').toFixed(1)} | ${med('rust-ingest', 'cpu').toFixed(1)} | | |`)
  lines.push('')
  lines.push(`Each round the C publisher sends ${2 * INGEST_COUNT} messages (${n0(med('oc2-ingest', 'publisherRate'))}/s, broker-acknowledged) while the subscriber is stopped; the rate is how fast the subscriber then drains them, first event to last.`)
}
const table = lines.join('\n')
console.log('\n' + table)

if (o.write) {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU'
  const raw = SCENARIOS.map((s) => `- ${s.name}: ${results[s.name].map((r) => r.rate.toFixed(0)).join(', ')} /s`).join('\n')
  const doc = readFileSync(path.join(HERE, 'RESULTS.md'), 'utf8')
  const marker = /<!-- results -->[\s\S]*<!-- \/results -->/
  const block = `<!-- results -->\n${table}\n\nMedians of ${o.repeat} rounds of ${SECONDS} s each (after 0.5 s of warm-up; ingest: ${2 * INGEST_COUNT} messages per round), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
    `Node ${process.version}, ${os.cpus().length} × ${cpu}, load average before the run ${loadBefore.toFixed(1)}, after ${os.loadavg()[0].toFixed(1)}. Every round:\n\n${raw}\n<!-- /results -->`
  writeFileSync(path.join(HERE, 'RESULTS.md'), marker.test(doc) ? doc.replace(marker, block) : `${doc}\n${block}\n`)
  console.log('written to RESULTS.md')
}
