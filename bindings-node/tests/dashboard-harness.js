'use strict'
// Starts examples/node/dashboard/server.mjs for the dashboard tests and
// talks raw HTTP to it (node:http, so that Host, Origin and Cookie are
// exactly what the test says).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')

const SERVER = path.join(__dirname, '..', '..', 'examples', 'node', 'dashboard', 'server.mjs')

// `dashboard on <url> watching <broker>`; <url> carries ?token= unless the
// token was fixed through the environment.
const START_LINE = /^dashboard on (http:\/\/(\S+?):(\d+)\/)(?:\?token=(\S+))?.* watching (\S+)\n/m

/**
 * Resolves once the start line is out: `{ child, line, base, host, port,
 * token, url, output(), stop() }` (`url` is the one to open, token included).
 */
function startDashboard (brokerUrl, { args = [], env = {} } = {}) {
  const child = spawn(process.execPath, [SERVER, '--url', brokerUrl, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env }
  })
  let out = ''
  let err = ''
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      const m = START_LINE.exec(out)
      if (m) {
        resolve({
          child,
          line: m[0],
          base: m[1],
          host: m[2],
          port: Number(m[3]),
          token: m[4] ?? null,
          url: m[4] ? `${m[1]}?token=${m[4]}` : m[1],
          output: () => ({ stdout: out, stderr: err }),
          async stop () {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
            return exited
          }
        })
      }
    })
    child.stderr.on('data', (d) => { err += d })
    exited.then(({ code, signal }) => reject(Object.assign(new Error(`dashboard exited (${code ?? signal}): ${out}${err}`), { code, stdout: out, stderr: err })))
  })
}

/** One request: `{ status, headers, text, json }` (json: the parsed body or undefined). */
function request (port, { method = 'GET', path: p = '/', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        let json
        try { json = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The addresses listening on TCP `port` in this network namespace (Linux /proc/net/tcp{,6}). */
function listeningAddresses (port) {
  const found = []
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    if (!fs.existsSync(file)) continue
    for (const line of fs.readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/)
      const [addr, portHex] = local.split(':')
      if (state !== '0A' || parseInt(portHex, 16) !== port) continue
      found.push(v6 ? ipv6(addr) : ipv4(addr))
    }
  }
  return found
}

// /proc writes each 32-bit word of an address in host (little-endian) order.
function ipv4 (hex) {
  return Buffer.from(hex, 'hex').reverse().join('.')
}

function ipv6 (hex) {
  const words = hex.match(/.{8}/g).map((w) => Buffer.from(w, 'hex').reverse())
  const b = Buffer.concat(words)
  if (b.every((x) => x === 0)) return '::'
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return '::1'
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return b.subarray(12).join('.')
  return b.toString('hex').match(/.{4}/g).join(':')
}

module.exports = { startDashboard, request, listeningAddresses }
