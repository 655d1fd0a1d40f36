'use strict'
// A throwaway broker per test file (Mosquitto unless `--kind` says otherwise), from tests/broker/broker.py (free
// port, TCP_NODELAY, stopped by PID). Never the machine's broker on 1883.

const { execFile, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const BROKER_PY = path.join(__dirname, '..', '..', '..', 'tests', 'broker', 'broker.py')

function startBroker (extra = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-node-broker-'))
  const out = execFileSync('python3', [BROKER_PY, 'start', '--dir', dir, ...extra], { encoding: 'utf8' })
  return described(dir, out)
}

// The same without blocking the event loop, so that brokers slow to start
// (RabbitMQ, ActiveMQ: `extra` = ['--kind', 'rabbitmq', ...]) start side by side.
function startBrokerAsync (extra = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-node-broker-'))
  return new Promise((resolve, reject) => {
    execFile('python3', [BROKER_PY, 'start', '--dir', dir, ...extra], { encoding: 'utf8' }, (err, out, stderr) => {
      if (err) {
        fs.rmSync(dir, { recursive: true, force: true })
        reject(new Error(`broker.py start ${extra.join(' ')}: ${err.message}\n${stderr}`))
      } else {
        resolve(described(dir, out))
      }
    })
  })
}

function described (dir, out) {
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

module.exports = { startBroker, startBrokerAsync }
