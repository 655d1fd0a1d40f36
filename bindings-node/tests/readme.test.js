'use strict'
// The README's quick start runs as written (against a throwaway broker
// instead of 127.0.0.1:1883), prints what the README says, and exits by itself.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { startBroker } = require('./helpers/broker.js')

test('the quick start works as written', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Quick start'))
  const code = /```js\n([\s\S]*?)```/.exec(section)[1]
  assert.match(code, /mqtt:\/\/127\.0\.0\.1:1883/)
  const broker = startBroker()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-readme-'))
  try {
    // `require('oc2mqtt')` resolves to this package through a node_modules link.
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'oc2mqtt'))
    fs.writeFileSync(path.join(dir, 'quickstart.js'), code.replace('mqtt://127.0.0.1:1883', broker.url))
    const r = spawnSync(process.execPath, ['quickstart.js'], { cwd: dir, encoding: 'utf8', timeout: 30000 })
    assert.equal(r.signal, null, 'the quick start did not exit by itself')
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'fw-1 102\nfw-1 200\ncomplete: true\n')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    broker.stop()
  }
})

test('the connection events example works as written', { timeout: 60000 }, async () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Connection events'))
  const code = /```js\n([\s\S]*?)```/.exec(section)[1]
  assert.match(code, /mqtt:\/\/127\.0\.0\.1:1883/)
  const broker = startBroker()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-readme-'))
  let child
  let stopped = false
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(path.join(__dirname, '..'), path.join(dir, 'node_modules', 'oc2mqtt'))
    fs.writeFileSync(path.join(dir, 'events.mjs'), code.replace('mqtt://127.0.0.1:1883', broker.url))
    child = spawn(process.execPath, ['events.mjs'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const until = async (what, check) => {
      for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.ok(check(), `${what}\nstdout:\n${out}\nstderr:\n${err}`)
    }
    await until('connected', () => out.includes(`connected to ${broker.url} (MQTT 5)`))
    broker.stop()
    stopped = true
    await until('offline, an attempt, its failure', () => /reconnect failed: OC2_CONNECT/.test(out))
    assert.match(out, /broker gone: \S/)
    assert.match(out, /reconnecting \(attempt 1\)/)
    assert.match(err, /^oc2mqtt: connection lost; reconnecting why=".+"$/m)
    // It listens to connection events: it stays alive (until killed here).
    assert.equal(child.exitCode, null)
  } finally {
    if (child) child.kill()
    if (!stopped) broker.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
