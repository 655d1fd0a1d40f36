'use strict'
// A throwaway Mosquitto per test file, from tests/broker/broker.py (free
// port, TCP_NODELAY, stopped by PID). Never the machine's broker on 1883.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const BROKER_PY = path.join(__dirname, '..', '..', '..', 'tests', 'broker', 'broker.py')

function startBroker (extra = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-node-broker-'))
  const out = execFileSync('python3', [BROKER_PY, 'start', '--dir', dir, ...extra], { encoding: 'utf8' })
  const info = JSON.parse(out.trim().split('\n').pop())
  return {
    ...info,
    url: `mqtt://127.0.0.1:${info.port}`,
    stop () {
      execFileSync('python3', [BROKER_PY, 'stop', '--pid', String(info.pid)])
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

module.exports = { startBroker }
