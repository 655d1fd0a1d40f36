'use strict'
// The process ends by itself once every Producer, Consumer and Monitor is
// closed: no handle is left open (run in a child that never calls process.exit).

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { startBroker } = require('./helpers/broker.js')

function run (args, limitMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out, err, exitedAt: Date.now() })
    })
  })
}

test('a process that closed everything exits on its own, promptly', async () => {
  const broker = startBroker()
  try {
    const r = await run([path.join(__dirname, 'fixtures', 'clean-exit.js'), broker.url], 30000)
    assert.equal(r.signal, null, `killed after 30 s: something kept the process alive\n${r.out}${r.err}`)
    assert.equal(r.code, 0, r.err)
    const m = /exchange complete=true; everything closed at (\d+)/.exec(r.out)
    assert.ok(m, r.out + r.err)
    const lingered = r.exitedAt - Number(m[1])
    assert.ok(lingered < 3000, `exited ${lingered} ms after closing`)
  } finally {
    broker.stop()
  }
})

test('a process with a consumer still serving does not exit (the check can fail)', async () => {
  const broker = startBroker()
  try {
    const script = `const { Consumer } = require(${JSON.stringify(path.join(__dirname, '..'))});
      (async () => { const c = new Consumer({ url: ${JSON.stringify(broker.url)}, deviceId: 'stay' }); await c.connect(); c.serve(() => {}); console.log('serving') })()`
    const r = await run(['-e', script], 3000)
    assert.match(r.out, /serving/)
    assert.equal(r.signal, 'SIGKILL', 'a serving consumer keeps the process alive until closed')
  } finally {
    broker.stop()
  }
})

test('a role whose connection events are listened to keeps the process alive until closed, as an mqtt.js client', async () => {
  const broker = startBroker()
  try {
    const pkg = JSON.stringify(path.join(__dirname, '..'))
    const url = JSON.stringify(broker.url)
    const listening = `const { Producer } = require(${pkg});
      (async () => { const p = new Producer({ url: ${url}, id: 'stay' }); p.on('offline', () => {}); await p.connect(); console.log('listening') })()`
    const r = await run(['-e', listening], 3000)
    assert.match(r.out, /listening/)
    assert.equal(r.signal, 'SIGKILL', 'kept alive while someone listens')
    const quiet = `const { Producer } = require(${pkg});
      (async () => { const p = new Producer({ url: ${url}, id: 'go' }); p.on('offline', () => {}); await p.connect();
        p.removeAllListeners('offline'); console.log('not listening') })()`
    const q = await run(['-e', quiet], 10000)
    assert.match(q.out, /not listening/)
    assert.equal(q.signal, null, 'exits once nobody listens')
    assert.equal(q.code, 0, q.err)
  } finally {
    broker.stop()
  }
})
