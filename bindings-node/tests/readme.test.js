'use strict'
// The README's quick start runs as written (against a throwaway broker
// instead of 127.0.0.1:1883), prints what the README says, and exits by itself.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
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
