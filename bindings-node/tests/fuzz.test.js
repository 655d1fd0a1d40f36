'use strict'
// Random JavaScript values through every function that converts them to core
// types. The Rust codec has its own fuzzer (core/fuzz); this covers what only
// the binding does: objects, arrays, numbers, strings, BigInts, Buffers,
// functions, symbols, NaN, getters that throw, and objects nested too deeply.
// Each call must return or throw a TypeError/RangeError or an OC2_* Error
// with a message: never anything else, never a crash of the process.

const test = require('node:test')
const assert = require('node:assert/strict')

const { encode, decode, Topics, Correlator, Deduplicator } = require('..')

const KEYS = [
  'action', 'target', 'args', 'actuator', 'headers', 'body', 'openc2', 'request',
  'response', 'notification', 'status', 'status_text', 'results', 'request_id',
  'created', 'from', 'to', 'content', 'command_id', 'response_requested',
  'duration', 'start_time', 'stop_time', 'features', 'ipv4_net', 'slpf', 'x:y',
  '', '\ud800', 'k'.repeat(40), '__proto__'
]

const SEEDS = [
  { action: 'deny', target: { ipv4_net: '10.0.0.0/8' }, args: { duration: 500 } },
  { status: 200, results: { versions: ['1.0'] } },
  { headers: { request_id: 'r' }, body: { openc2: { request: { action: 'query', target: { features: [] } } } } },
  { content: { response: { status: 200 } }, request_id: 'x', to: 'p' }
]

// A small seeded generator (mulberry32), so that a failure can be replayed.
function rng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gen (seed) {
  const r = rng(seed)
  const pick = (xs) => xs[Math.floor(r() * xs.length)]
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1))
  const throwing = () => Object.defineProperty({}, 'trap', { enumerable: true, get () { throw GETTER } })
  const atom = () => pick([
    null, undefined, true, false, 0, -1, 2 ** 70, -(2 ** 70), 1.5, NaN, Infinity, -0, '', 'deny', 'query',
    'x'.repeat(int(0, 50)), '\ud800', 10n, Buffer.from('bytes'), new Uint8Array(2), 102, 200, 999, 'none',
    'complete', [], {}, () => 1, Symbol('s'), new Date(0), new Map([[1, 2]]), throwing(), '1.2.3.4'
  ])
  const value = (depth = 0) => {
    const p = r()
    if (depth > 5 || p < 0.4) return atom()
    if (p < 0.7) {
      const o = {}
      for (let i = int(0, 4); i > 0; i--) o[pick(KEYS)] = value(depth + 1)
      return o
    }
    return Array.from({ length: int(0, 4) }, () => value(depth + 1))
  }
  const mutate = (o) => {
    // Only plain objects: a Buffer, Date or Map is left as generated, and so is the trap.
    if (o === null || Object.getPrototypeOf(o) !== Object.prototype || Object.hasOwn(o, 'trap')) return
    const keys = Object.keys(o)
    if (keys.length) {
      const k = pick(keys)
      if (r() < 0.5 && o[k] !== null && typeof o[k] === 'object') mutate(o[k])
      else o[k] = value()
    }
    if (r() < 0.3) o[pick(KEYS)] = value()
  }
  const message = () => {
    const m = structuredClone(pick(SEEDS))
    for (let i = int(1, 3); i > 0; i--) mutate(m)
    if ('action' in m && r() < 0.7) return { headers: { request_id: 'r', from: 'p' }, body: { openc2: { request: m } } }
    if ('status' in m && r() < 0.7) return { headers: { request_id: 'r', from: 'c' }, body: { openc2: { response: m } } }
    return m
  }
  return { r, pick, value, message }
}

function deep (n) {
  const root = {}
  let cur = root
  for (let i = 0; i < n; i++) {
    cur.a = {}
    cur = cur.a
  }
  return root
}

// A getter's own exception passes through unchanged, as with JSON.stringify.
const GETTER = new Error('getter')
const expected = (e) =>
  e === GETTER ||
  ((e instanceof TypeError || e instanceof RangeError || (e instanceof Error && /^OC2_/.test(e.code ?? ''))) &&
    typeof e.message === 'string' && e.message.length > 0)

for (let seed = 0; seed < 8; seed++) {
  test(`random values give a result or a documented error (seed ${seed})`, () => {
    const g = gen(seed)
    const topics = new Topics()
    const calls = [
      (m) => encode(m),
      (m) => encode(m, { encoding: 'cbor' }),
      (m) => encode(m, { dialect: g.pick(['spec', 'otupy', 'bare', 'nope', 5]) }),
      (m) => encode(m, g.value()),
      (m) => topics.commandTopics(m),
      (m) => topics.responseTopics(m),
      (m) => new Deduplicator().check(m, Buffer.from('x'), 1),
      (m) => new Correlator().onResponse(m),
      (m) => decode(encode(m).payload)
    ]
    const outcomes = { ok: 0, error: 0 }
    for (let i = 0; i < 2500; i++) {
      const m = g.message()
      try {
        g.pick(calls)(m)
        outcomes.ok++
      } catch (e) {
        assert.ok(expected(e), `unexpected ${e?.constructor?.name} ${e?.code}: ${e?.message}`)
        outcomes.error++
      }
    }
    assert.ok(outcomes.ok >= 10 && outcomes.error >= 10, JSON.stringify(outcomes))
  })
}

test('an object nested 100 000 deep, or inside itself, is an error, not a stack overflow', () => {
  const m = { headers: {}, body: { openc2: { request: { action: 'deny', target: { ipv4_net: '1.2.3.4' }, args: { 'x:y': deep(100000) } } } } }
  assert.throws(() => encode(m), { name: 'RangeError', message: /^message\.body\.openc2\.request\.args\.x:y\.a\.a.* is nested more than 128 levels deep/ })
  const loop = { action: 'deny', target: { ipv4_net: '1.2.3.4' } }
  loop.args = { 'x:y': loop }
  assert.throws(() => encode({ headers: {}, body: { openc2: { request: loop } } }), { name: 'RangeError', message: /is nested more than 128 levels deep \(is an object inside itself\?\)$/ })
  assert.throws(() => new Topics().commandTopics({ headers: {}, body: { openc2: { request: loop } } }), { name: 'RangeError' })
})
