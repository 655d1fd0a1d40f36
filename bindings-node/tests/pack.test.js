'use strict'
// `npm pack` makes a tarball that installs into an empty project and works there.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const PKG = path.join(__dirname, '..')

test('the packed tarball installs into an empty project and works', { timeout: 120000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oc2mqtt-pack-'))
  try {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, encoding: 'utf8' })
    const [info] = JSON.parse(out)
    const files = info.files.map((f) => f.path).sort()
    assert.deepEqual(files, ['README.md', 'index.d.ts', 'index.js', 'native.js', 'oc2mqtt.linux-x64-gnu.node', 'package.json'])
    const project = path.join(dir, 'app')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(dir, info.filename)], { cwd: project, encoding: 'utf8' })
    const script = `const { decode, Producer } = require('oc2mqtt');
      const d = decode(Buffer.from('{"action":"query","target":{"features":[]}}'));
      console.log(d.dialect, d.message.body.openc2.request.action, typeof Producer)`
    const r = execFileSync(process.execPath, ['-e', script], { cwd: project, encoding: 'utf8' })
    assert.equal(r.trim(), 'bare query function')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
