'use strict'
// `npm pack` makes a tarball that installs into an empty project and works
// there, from JavaScript and from strict TypeScript (the version in
// package-lock.json: the current one, 7 at the time of writing).

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const PKG = path.join(__dirname, '..')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-pack-'))
const project = path.join(dir, 'app')
let packed

test.before(() => {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, encoding: 'utf8' })
  packed = JSON.parse(out)[0]
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(dir, packed.filename)], { cwd: project, encoding: 'utf8' })
})

test.after(() => fs.rmSync(dir, { recursive: true, force: true }))

test('the packed tarball installs into an empty project and works', { timeout: 120000 }, () => {
  const files = packed.files.map((f) => f.path).sort()
  assert.deepEqual(files, ['README.md', 'index.d.ts', 'index.js', 'native.js', 'oc2mqtt.linux-x64-gnu.node', 'package.json'])
  const script = `const { decode, Producer, __napiBindingTarget } = require('oc2mqtt');
    const d = decode(Buffer.from('{"action":"query","target":{"features":[]}}'));
    console.log(d.dialect, d.message.body.openc2.request.action, typeof Producer, __napiBindingTarget)`
  const r = execFileSync(process.execPath, ['-e', script], { cwd: project, encoding: 'utf8' })
  assert.equal(r.trim(), 'bare query function native')
})

// A TypeScript user's project: typescript and @types/node as any Node
// project has them (the versions of this package's lock file; npm's cache
// first, the registry if their metadata is not cached), a strict tsconfig that does not list `types` (TypeScript 6 and
// later then load no @types package by themselves).
const SAMPLE = `import { Producer, Consumer, Monitor, decode, setLogger, type ConnectEvent, type Summary } from 'oc2mqtt'

export async function main (url: string): Promise<number> {
  const d = decode(Buffer.from('{"action":"query","target":{"features":[]}}'))
  setLogger(console, { level: 'warn' })
  await using producer = new Producer({ url, id: 'p1' })
  producer.on('connect', (e: ConnectEvent) => console.log(e.broker, e.sessionResumed))
  producer.on('offline', (e) => console.log(e.reason))
  await producer.connect()
  await using consumer = new Consumer({ url, deviceId: 'fw-1' })
  await using monitor = new Monitor({ url })
  monitor.on('response', (e) => console.log(e.latencyMs))
  const s: Summary = await producer.send({ action: 'query', target: { features: [] } }, { to: 'fw-1' }).collect()
  void consumer
  return s.responses.length + (d.msgType === 'request' ? 1 : 0)
}
`

function version (name) {
  return require(path.join(PKG, 'node_modules', name, 'package.json')).version
}

test('a strict TypeScript project compiles against the packed typings with no "types" setting', { timeout: 120000 }, () => {
  const ts = version('typescript')
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-dev', `typescript@${ts}`, `@types/node@${version('@types/node')}`], { cwd: project, encoding: 'utf8' })
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false },
    files: ['app.ts']
  }))
  fs.writeFileSync(path.join(project, 'app.ts'), SAMPLE)
  const tsc = path.join(project, 'node_modules', 'typescript', 'bin', 'tsc')
  const run = () => spawnSync(process.execPath, [tsc, '-p', project], { cwd: project, encoding: 'utf8' })
  assert.equal(spawnSync(process.execPath, [tsc, '--version'], { encoding: 'utf8' }).stdout.trim(), `Version ${ts}`)
  const r = run()
  assert.equal(r.status, 0, r.stdout + r.stderr)

  // The check can fail: without the reference to Node's types, the typings
  // do not compile under this TypeScript (the errors users saw).
  const dts = path.join(project, 'node_modules', 'oc2mqtt', 'index.d.ts')
  fs.writeFileSync(dts, fs.readFileSync(dts, 'utf8').replace('/// <reference types="node" />', ''))
  const without = run()
  assert.notEqual(without.status, 0)
  assert.match(without.stdout, /node_modules\/oc2mqtt\/index\.d\.ts\(\d+,\d+\): error TS2591: Cannot find name 'Buffer'/)
})
