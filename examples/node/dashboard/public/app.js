// The dashboard page: renders what the server pushes over Server-Sent Events
// and posts the form to /api/send. Plain browser JavaScript, no build step.
// The token travels in an HttpOnly cookie the page cannot read; both
// requests are same-origin, so the browser adds it.
'use strict'

const exchanges = new Map()
let errorCount = 0
const $ = (id) => document.getElementById(id)

function text (tag, value, className) {
  const el = document.createElement(tag)
  el.textContent = value
  if (className) el.className = className
  return el
}

function time (ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) + '.' + String(ms % 1000).padStart(3, '0') : ''
}

function renderExchange (x) {
  exchanges.set(x.requestId, x)
  let row = document.querySelector(`tr[data-request-id="${CSS.escape(x.requestId)}"]`)
  if (!row) {
    row = document.createElement('tr')
    row.dataset.requestId = x.requestId
    $('exchanges').prepend(row)
  }
  row.replaceChildren()
  row.append(text('td', time(x.at)))
  const id = text('td', '')
  id.append(text('code', x.requestId.slice(0, 8), 'request-id'))
  id.title = x.requestId
  row.append(id)
  row.append(text('td', `${x.from ?? '?'} → ${x.to ? x.to.join(', ') : 'all'}`))
  const cmd = x.command
  row.append(text('td', cmd ? `${cmd.action} ${Object.keys(cmd.target)[0]}` : '(not seen)', 'command'))
  const rsp = document.createElement('td')
  for (const r of x.responses) {
    const kind = r.status === 102 ? 'interim' : r.status >= 400 ? 'error' : 'ok'
    const badge = text('span', `${r.from ?? '?'}: ${r.status}${r.statusText ? ' ' + r.statusText : ''}${r.latencyMs !== null ? ` (${r.latencyMs.toFixed(1)} ms)` : ''}`, `response ${kind}`)
    badge.dataset.status = String(r.status)
    rsp.append(badge)
  }
  if (x.complete === true) rsp.append(text('span', ' ✓ complete', 'complete'))
  row.append(rsp)
  row.append(text('td', x.missing.length ? x.missing.join(', ') : '', 'missing'))
  renderSummary()
}

function renderError (e) {
  errorCount++
  const li = text('li', `${time(e.at)} ${e.kind}: ${e.text}`)
  li.dataset.kind = e.kind
  $('errors').prepend(li)
  renderSummary()
}

function renderSummary () {
  let responses = 0; let latencySum = 0; let latencyN = 0; let missing = 0
  for (const x of exchanges.values()) {
    responses += x.responses.length
    missing += x.missing.length
    for (const r of x.responses) if (r.latencyMs !== null) { latencySum += r.latencyMs; latencyN++ }
  }
  $('count-requests').textContent = [...exchanges.values()].filter((x) => x.command).length
  $('count-responses').textContent = responses
  $('avg-latency').textContent = latencyN ? (latencySum / latencyN).toFixed(1) : '–'
  $('count-missing').textContent = missing
  $('count-errors').textContent = errorCount
}

const events = new EventSource('events')
events.addEventListener('open', () => { $('status').textContent = 'live'; $('status').className = 'status live' })
events.addEventListener('error', () => {
  // CLOSED: the server refused the stream (a new run has a new token), so no retry.
  const refused = events.readyState === EventSource.CLOSED
  $('status').textContent = refused ? 'refused: open the URL the dashboard printed' : 'reconnecting…'
  $('status').className = 'status'
})
events.addEventListener('snapshot', (m) => {
  const s = JSON.parse(m.data)
  $('broker').textContent = s.broker
  $('exchanges').replaceChildren(); $('errors').replaceChildren(); exchanges.clear(); errorCount = 0
  s.exchanges.forEach(renderExchange)
  s.errors.forEach(renderError)
})
events.addEventListener('exchange', (m) => renderExchange(JSON.parse(m.data)))
events.addEventListener('problem', (m) => renderError(JSON.parse(m.data)))

$('send-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const result = $('send-result')
  result.className = ''
  let body
  try {
    body = {
      action: $('action').value,
      target: JSON.parse($('target').value),
      args: $('args').value.trim() ? JSON.parse($('args').value) : undefined,
      to: $('to').value.split(',').map((s) => s.trim()).filter(Boolean),
      profile: $('profile').value.trim(),
      timeout: Number($('timeout').value)
    }
  } catch (e) {
    result.className = 'error'
    result.textContent = `Invalid JSON: ${e.message}`
    return
  }
  result.textContent = 'sending…'
  const res = await fetch('api/send', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = await res.json()
  if (res.ok) {
    result.textContent = `sent ${answer.requestId}`
    result.dataset.requestId = answer.requestId
  } else {
    result.className = 'error'
    result.textContent = answer.error
  }
})
