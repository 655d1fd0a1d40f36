'use strict'
// index.d.ts describes the API as it is used: tests/types/usage.ts compiles
// under `tsc --strict`, and tests/types/bad.ts (a wrong option) does not.

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const HERE = path.join(__dirname, 'types')
// TypeScript 7 exports no subpaths; its launcher is bin/tsc beside package.json.
const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc')
const FLAGS = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022']

function tsc (file) {
  return spawnSync(process.execPath, [TSC, ...FLAGS, path.join(HERE, file)], { encoding: 'utf8' })
}

test('the typings accept the documented usage', () => {
  const r = tsc('usage.ts')
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('the typings refuse a wrong option value', () => {
  const r = tsc('bad.ts')
  assert.notEqual(r.status, 0)
  assert.match(r.stdout, /Type '"xml"' is not assignable to type 'Encoding \| undefined'/)
})
