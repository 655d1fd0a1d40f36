'use strict'
// The shared vectors of tests/vectors/, decoded from Node with the same
// results as the Rust runner (core/tests/vectors.rs): see tests/vectors/README.md.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const { decode, encode } = require('..')

const ROOT = path.join(__dirname, '..', '..', 'tests', 'vectors')
const TOP_KEYS = new Set(['description', 'payload_json', 'payload_text', 'payload_hex', 'payload_repeat', 'properties', 'expect'])
const PAYLOAD_KEYS = ['payload_json', 'payload_text', 'payload_hex', 'payload_repeat']
const BARE_HEADERS = new Set(['request_id', 'created', 'from', 'to'])

function loadCases () {
  const cases = []
  for (const group of fs.readdirSync(ROOT, { withFileTypes: true })) {
    if (!group.isDirectory()) continue
    for (const file of fs.readdirSync(path.join(ROOT, group.name))) {
      if (!file.endsWith('.json')) continue
      const full = path.join(ROOT, group.name, file)
      cases.push({ group: group.name, name: `${group.name}/${file}`, data: JSON.parse(fs.readFileSync(full, 'utf8')) })
    }
  }
  return cases.sort((a, b) => a.name.localeCompare(b.name))
}

function payloadOf (c) {
  const given = PAYLOAD_KEYS.filter((k) => k in c)
  assert.equal(given.length, 1, `exactly one payload key, found ${given}`)
  const key = given[0]
  const v = c[key]
  switch (key) {
    case 'payload_json': return Buffer.from(JSON.stringify(v))
    case 'payload_text': return Buffer.from(v, 'utf8')
    case 'payload_hex': return Buffer.from(v, 'hex')
    default: return Buffer.from(v.prefix + v.fill.repeat(v.count) + v.suffix, 'utf8')
  }
}

/** Vector properties ({payload_format_indicator, content_type, user_properties: pairs}) in our shape. */
function propertiesOf (c) {
  const p = c.properties
  if (p === undefined || p === null) return null
  for (const k of Object.keys(p)) assert.ok(['payload_format_indicator', 'content_type', 'user_properties'].includes(k), `unknown property key ${k}`)
  const out = {}
  if ('payload_format_indicator' in p) out.payloadFormatIndicator = p.payload_format_indicator
  if ('content_type' in p) out.contentType = p.content_type
  if ('user_properties' in p) out.userProperties = p.user_properties
  return out
}

const cases = loadCases()

test('the vectors are there: at least 60, at least 25 invalid', () => {
  assert.ok(cases.length >= 60, `found ${cases.length} vectors in ${ROOT}`)
  assert.ok(cases.filter((c) => c.group === 'invalid').length >= 25)
})

for (const { name, group, data } of cases) {
  test(name, () => {
    for (const k of Object.keys(data)) assert.ok(TOP_KEYS.has(k), `unknown top-level key ${k}`)
    assert.ok(typeof data.description === 'string' && data.description.length > 0, 'description')
    const payload = payloadOf(data)
    const props = propertiesOf(data)
    const expect = data.expect
    if ('error' in expect) {
      assert.equal(group, 'invalid', 'error cases live in invalid/')
      let err
      assert.throws(() => decode(payload, props), (e) => { err = e; return true })
      assert.ok(err instanceof Error)
      assert.equal(err.code, 'OC2_DECODE')
      assert.equal(err.kind, expect.error, err.message)
      if ('path' in expect) assert.equal(err.path, expect.path)
      if ('reason_contains' in expect) assert.ok(err.reason.includes(expect.reason_contains), `${err.reason} contains ${expect.reason_contains}`)
      const names = { request_id: 'requestId', from: 'from', dialect: 'dialect', encoding: 'encoding', msg_type: 'msgType', to: 'to', response_requested: 'responseRequested' }
      for (const [k, v] of Object.entries(expect.salvage ?? {})) {
        assert.ok(k in names, `unknown salvage key ${k}`)
        assert.equal(err.salvage[names[k]], v, `salvage.${k}`)
      }
      return
    }
    assert.notEqual(group, 'invalid', 'success cases live outside invalid/')
    const d = decode(payload, props)
    assert.equal(d.encoding, expect.encoding)
    assert.equal(d.dialect, expect.dialect)
    assert.equal(d.msgType, expect.msg_type)
    assert.deepEqual(d.message, expect.message)

    // Re-encode in every encoding x dialect and decode again, with and without properties.
    const { headers = {}, body, ...topLevel } = d.message
    const dialects = ['spec', 'otupy']
    // The bare dialect carries the four defined headers beside the body, and nothing else.
    const bareOk = Object.keys(headers).every((k) => BARE_HEADERS.has(k)) && Object.keys(topLevel).length === 0
    if (bareOk && d.msgType !== 'notification') dialects.push('bare')
    for (const encoding of ['json', 'cbor']) {
      for (const dialect of dialects) {
        const out = encode(d.message, { encoding, dialect })
        // otupy's top level holds the headers: the message's own top-level
        // keys (`signature`) come back as headers.
        const expected = dialect === 'otupy' && Object.keys(topLevel).length > 0
          ? { headers: { ...headers, ...topLevel }, body }
          : d.message
        for (const p of [out.properties, null]) {
          const back = decode(out.payload, p)
          assert.deepEqual(back.message, expected, `${encoding}/${dialect} properties=${p !== null}`)
          assert.equal(back.encoding, encoding)
          assert.equal(back.dialect, dialect)
        }
      }
    }
  })
}
