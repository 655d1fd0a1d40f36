'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const native = require('../native.js')
const pkg = require('..')

test('everything the addon exports is exported by the package', () => {
  const missing = Object.keys(native).filter((k) => !k.startsWith('__') && !(k in pkg))
  assert.deepEqual(missing, [])
})

test('everything index.d.ts declares is defined at run time (__napiBindingTarget included)', () => {
  const dts = require('node:fs').readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1])
  assert.ok(declared.includes('__napiBindingTarget') && declared.includes('setLogger'), declared.join(' '))
  const undefinedAtRunTime = declared.filter((name) => pkg[name] === undefined)
  assert.deepEqual(undefinedAtRunTime, [])
  assert.equal(pkg.__napiBindingTarget, 'native')
})

test('named imports work from ES modules', () => {
  const url = require('node:url').pathToFileURL(path.join(__dirname, '..', 'index.js')).href
  const src = `import { decode, Producer, Monitor, Correlator } from ${JSON.stringify(url)};
    console.log(typeof decode, typeof Producer, typeof Monitor, typeof Correlator)`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), 'function function function function')
})
