#!/usr/bin/env node
// Profiles the sequential exchange of bench.mjs (one exchange in flight, the
// consumer in a child process, a throwaway Mosquitto) for one pair at a time,
// with Linux perf attached to the producer, the consumer and the broker for a
// window of steady exchanges:
//
//   node profile-seq.mjs oc2|mqttjs stat  [--seconds 3]   # perf stat counts per exchange
//   node profile-seq.mjs oc2|mqttjs trace [--seconds 0.5] # perf record of syscalls and
//                                                          # scheduler events, split by trace-split.py
//
// `stat` prints, per exchange and per process (and per thread), the context
// switches, CPU migrations, task-clock and the syscalls that hand work between
// threads (epoll_wait, futex, write/eventfd, sendto/writev, recvfrom/read).
// `trace` writes perf.data in --out (default a temporary directory) and prints
// the path and the thread ids, for trace-split.py.
//
// Run it under the shared benchmark lock; it needs root (or perf_event_paranoid ≤ 1) for tracepoints.

import { spawn, execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, readdirSync, readFileSync, readlinkSync, writeSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { COMMAND, CONSUMER_ID, PRODUCER_ID, mqttjsProducer } from './common.mjs'

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '' },
    out: { type: 'string', default: '' }
  }
})
const [pair, mode] = positionals
if (!['oc2', 'mqttjs'].includes(pair) || !['stat', 'trace', 'cpu'].includes(mode)) {
  console.error('usage: node profile-seq.mjs oc2|mqttjs stat|trace|cpu [--seconds S] [--out DIR]')
  process.exit(2)
}
const SECONDS = Number(o.seconds || (mode === 'stat' ? 3 : 0.5))
const HERE = path.dirname(new URL(import.meta.url).pathname)
const BROKER_PY = path.join(HERE, '..', '..', 'tests', 'broker', 'broker.py')

const dir = mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-profile-'))
const info = JSON.parse(execFileSync('python3', [BROKER_PY, 'start', '--dir', dir], { encoding: 'utf8' }).trim().split('\n').pop())
const url = `mqtt://127.0.0.1:${info.port}`

function startChild (script, args) {
  const child = spawn(process.execPath, [path.join(HERE, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => String(d).startsWith('ready') ? resolve(child) : reject(new Error(String(d))))
    child.once('exit', (c) => reject(new Error(`${script} exited with ${c}`)))
  })
}

async function oc2Producer () {
  const { Producer } = await import('oc2mqtt')
  const p = new Producer({ url, id: PRODUCER_ID })
  await p.connect()
  const OPTIONS = { to: CONSUMER_ID, timeout: 10000 }
  return {
    send: async () => {
      const s = await p.sendCollect(COMMAND, OPTIONS)
      if (!s.complete || s.responses[0].status !== 200) throw new Error('incomplete exchange')
    },
    close: () => p.close()
  }
}

const threads = (pid) => Object.fromEntries(readdirSync(`/proc/${pid}/task`).map((t) => [t, readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim()]))

const consumer = await startChild(pair === 'oc2' ? 'consumer-oc2.mjs' : 'consumer-mqttjs.mjs', pair === 'oc2' ? [url] : [url, '--nodelay'])
const producer = pair === 'oc2' ? await oc2Producer() : await mqttjsProducer(url, { nodelay: true })
try {
  const warm = performance.now() + 500
  while (performance.now() < warm) await producer.send()
  const pids = { producer: process.pid, consumer: consumer.pid, broker: info.pid }
  const names = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, threads(p)]))
  const out = o.out || dir
  mkdirSync(out, { recursive: true })
  const SYSCALLS = ['epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'futex', 'write', 'read', 'sendto', 'recvfrom', 'writev']
  const events = ['context-switches', 'cpu-migrations', 'task-clock', ...SYSCALLS.map((s) => `syscalls:sys_enter_${s}`)]
  // trace: system-wide (a thread's switch-in is recorded in the context of the
  // task it replaces, often the idle task), filtered in the kernel to these threads.
  const tids = Object.values(names).flatMap((t) => Object.keys(t))
  const any = (field) => tids.map((t) => `${field}==${t}`).join(' || ')
  // perf starts disabled and is switched on and off through its control FIFO,
  // so that it counts exactly the exchanges counted here.
  const ctl = path.join(out, 'ctl.fifo')
  const ack = path.join(out, 'ack.fifo')
  for (const f of [ctl, ack]) { rmSync(f, { force: true }); execFileSync('mkfifo', [f]) }
  const control = ['-D', '-1', '--control', `fifo:${ctl},${ack}`]
  const args = mode === 'stat'
    ? ['stat', ...control, '--per-thread', '-x', ';', '-e', events.join(','), '-p', Object.values(pids).join(',')]
    : mode === 'cpu'
      ? ['record', ...control, '-q', '-F', '9999', '-g', '-o', path.join(out, 'perf.data'), '-p', `${pids.producer},${pids.consumer}`]
      : ['record', ...control, '-q', '-a', '-o', path.join(out, 'perf.data'),
        '-e', 'sched:sched_switch', '--filter', `${any('prev_pid')} || ${any('next_pid')}`,
        '-e', 'sched:sched_wakeup', '--filter', any('pid'),
        '-e', 'raw_syscalls:sys_enter', '--filter', any('common_pid'),
        '-e', 'raw_syscalls:sys_exit', '--filter', any('common_pid')]
  const fds = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, Object.fromEntries(readdirSync(`/proc/${p}/fd`).map((f) => { try { return [f, readlinkSync(`/proc/${p}/fd/${f}`)] } catch { return [f, '?'] } }))]))
  const perf = spawn('perf', args, { stdio: ['ignore', 'inherit', 'pipe'] })
  let err = ''
  perf.stderr.on('data', (d) => { err += d })
  const exited = new Promise((resolve) => perf.on('exit', resolve))
  // O_RDWR: opening either end of a FIFO this way does not wait for the other side.
  const ctlFd = openSync(ctl, 'r+')
  const ackFd = openSync(ack, 'r+')
  const command = (c) => {
    writeSync(ctlFd, `${c}\n`)
    const buf = Buffer.alloc(16)
    readSync(ackFd, buf) // blocks until perf acknowledges
  }
  command('enable')
  let n = 0
  const t0 = performance.now()
  const until = t0 + SECONDS * 1000
  while (performance.now() < until) { await producer.send(); n++ }
  const elapsed = (performance.now() - t0) / 1000
  command('disable')
  perf.kill('SIGINT')
  const code = await exited
  closeSync(ctlFd)
  closeSync(ackFd)
  console.log(JSON.stringify({ pair, mode, exchanges: n, seconds: elapsed, rate: n / elapsed, load: os.loadavg()[0], pids, names, fds: mode === 'trace' ? fds : undefined, out, perf: mode === 'stat' ? undefined : path.join(out, 'perf.data') }))
  if (mode === 'stat' || (code !== 0 && code !== null)) console.log(err)
} finally {
  await producer.close()
  consumer.kill('SIGTERM')
  execFileSync('python3', [BROKER_PY, 'stop', '--pid', String(info.pid)])
  if (!o.out && mode === 'stat') rmSync(dir, { recursive: true, force: true })
}
