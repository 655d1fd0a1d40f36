// The dashboard page: renders what the server pushes over Server-Sent Events
// and posts the form to /api/send. Plain browser JavaScript, no build step.
// The token travels in an HttpOnly cookie the page cannot read; both
// requests are same-origin, so the browser adds it.
//
// What an exchange shows (awaited responders and their deadline, complete,
// missing) is the package's Monitor's word, passed on by the server; the
// page only counts down to the deadline it was given.
'use strict'

const exchanges = new Map()
const devices = new Map()
let history = []
let lastMinute = { p50: null, p95: null, n: 0 }
let errorCount = 0
let clockOffset = 0 // the server's clock minus this browser's
const $ = (id) => document.getElementById(id)
const SVG = 'http://www.w3.org/2000/svg'
const now = () => Date.now() + clockOffset

function text (tag, value, className) {
  const el = document.createElement(tag)
  el.textContent = value
  if (className) el.className = className
  return el
}

function time (ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) + '.' + String(ms % 1000).padStart(3, '0') : ''
}

function ago (ms) {
  if (!ms) return '–'
  const s = Math.max(0, Math.round((now() - ms) / 1000))
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : time(ms)
}

const describe = (cmd) => cmd ? `${cmd.action} ${Object.keys(cmd.target ?? {})[0] ?? ''}`.trim() : '(not seen)'

/** Device ids, each unbreakable, separated by ", ". */
function ids (list, className = 'device') {
  const span = document.createElement('span')
  list.forEach((id, i) => {
    if (i > 0) span.append(', ')
    span.append(text('span', id, className))
  })
  return span
}

function isProblem (x) {
  return x.state === 'unanswered' || x.responses.some((r) => r.status >= 400)
}

// --- exchanges --------------------------------------------------------------

function pairingCell (x) {
  const td = document.createElement('td')
  td.className = 'pairing'
  if (x.state === 'open') {
    const span = document.createElement('span')
    span.className = 'awaiting'
    if (x.awaiting.length > 0) {
      span.append('awaiting ', ids(x.awaiting))
    } else {
      span.append('open to all')
    }
    const countdown = text('span', '', 'countdown')
    countdown.dataset.deadline = String(x.deadline)
    span.append(' ', countdown)
    td.append(span)
  } else if (x.state === 'complete') {
    td.append(text('span', '✓ complete', 'complete'))
  } else if (x.state === 'unanswered') {
    const span = document.createElement('span')
    span.className = 'missing'
    span.append('missing ', ids(x.missing))
    td.append(span)
  } else if (x.state === 'closed') {
    td.append(text('span', 'window over', 'quiet'))
  }
  td.dataset.state = x.state ?? 'unpaired'
  return td
}

function renderExchange (x) {
  exchanges.set(x.requestId, x)
  let row = document.querySelector(`tr[data-request-id="${CSS.escape(x.requestId)}"]`)
  if (!row) {
    row = document.createElement('tr')
    row.dataset.requestId = x.requestId
    $('exchanges').prepend(row)
    const rows = $('exchanges').rows
    if (rows.length > 200) rows[rows.length - 1].remove()
  }
  row.replaceChildren()
  const when = text('td', time(x.at), 'when')
  when.append(document.createElement('br'), text('code', x.requestId.slice(0, 8), 'request-id'))
  when.title = x.requestId
  row.append(when)
  const route = document.createElement('td')
  route.append(text('span', x.from ?? '?', 'device'), ' → ', x.to ? ids(x.to) : 'all')
  row.append(route)
  row.append(text('td', describe(x.command), 'command'))
  row.append(pairingCell(x))
  const rsp = document.createElement('td')
  for (const r of x.responses) {
    const kind = r.status === 102 ? 'interim' : r.status >= 400 ? 'error' : 'ok'
    const badge = document.createElement('span')
    badge.className = `response ${kind}`
    badge.append(text('span', r.from ?? '?', 'device'), `: ${r.status}${r.statusText ? ' ' + r.statusText : ''}`)
    if (r.latencyMs !== null) badge.append(' ', text('span', `(${r.latencyMs.toFixed(1)} ms)`, 'latency'))
    badge.dataset.status = String(r.status)
    rsp.append(badge)
  }
  row.append(rsp)
  row.dataset.state = x.state ?? 'unpaired'
  row.dataset.search = [x.requestId, x.from, ...(x.to ?? ['all']), describe(x.command), x.topic,
    ...x.responses.map((r) => `${r.from} ${r.status} ${r.statusText ?? ''}`), ...x.awaiting, ...x.missing].join(' ').toLowerCase()
  row.classList.toggle('problem', isProblem(x))
  applyFilter(row)
  countdowns()
  renderSummary()
  renderDevices()
}

// --- errors, devices, summary ---------------------------------------------------

function renderError (e) {
  errorCount++
  const li = document.createElement('li')
  li.append(text('time', time(e.at)), ` ${e.kind}: ${e.text}`)
  li.dataset.kind = e.kind
  li.dataset.search = `${e.kind} ${e.text} ${e.requestId ?? ''}`.toLowerCase()
  $('errors').prepend(li)
  if ($('errors').children.length > 200) $('errors').lastElementChild.remove()
  $('no-errors').hidden = true
  applyFilter(li)
  renderSummary()
}

function renderDevices () {
  const awaited = new Set()
  for (const x of exchanges.values()) if (x.state === 'open') x.awaiting.forEach((id) => awaited.add(id))
  const rows = [...devices.values()].sort((a, b) => a.id.localeCompare(b.id)).map((d) => {
    const tr = document.createElement('tr')
    tr.dataset.device = d.id
    tr.dataset.search = `${d.id} ${d.lastCommand ?? ''} ${d.lastStatus ?? ''}`.toLowerCase()
    tr.append(text('td', d.id, 'device'))
    const seen = text('td', ago(d.lastSeen), 'seen')
    seen.dataset.at = String(d.lastSeen ?? '')
    seen.title = time(d.lastSeen)
    tr.append(seen)
    tr.append(text('td', d.lastCommand ?? '–', 'last-command'))
    const status = text('td', d.lastStatus === null ? '–' : '', 'status')
    if (d.lastStatus !== null) {
      status.append(text('span', String(d.lastStatus), `response ${d.lastStatus >= 400 ? 'error' : d.lastStatus === 102 ? 'interim' : 'ok'}`))
      status.title = `${d.lastStatus}${d.lastStatusText ? ' ' + d.lastStatusText : ''}`
    }
    tr.append(status)
    tr.append(text('td', d.latencyMs === null ? '–' : `${d.latencyMs.toFixed(d.latencyMs < 100 ? 1 : 0)} ms`, 'latency'))
    tr.classList.toggle('awaited', awaited.has(d.id))
    // Missed its last command: no answer since.
    tr.classList.toggle('missed', !awaited.has(d.id) && d.missedAt !== null && (d.lastSeen === null || d.lastSeen < d.missedAt))
    applyFilter(tr)
    return tr
  })
  $('devices').replaceChildren(...rows)
}

function renderSummary () {
  let responses = 0; let awaiting = 0; let missing = 0
  for (const x of exchanges.values()) {
    responses += x.responses.length
    if (x.state === 'open') awaiting += x.awaiting.length
    if (x.state === 'unanswered') missing += x.missing.length
  }
  $('count-requests').textContent = [...exchanges.values()].filter((x) => x.command).length
  $('count-responses').textContent = responses
  $('count-awaiting').textContent = awaiting
  $('count-missing').textContent = missing
  $('count-errors').textContent = errorCount
  const { p50, p95 } = lastMinute
  $('latency-p50').textContent = p50 === null ? '–' : p50.toFixed(1)
  $('latency-p95').textContent = p95 === null ? '–' : p95.toFixed(1)
}

// --- the charts: hand-drawn SVG, one point a second --------------------------------

const W = 390; const H = 120; const LEFT = 34; const TOP = 8; const BOTTOM = 16
const SPAN = 120 // seconds shown

function el (tag, attrs, content) {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  if (content !== undefined) e.textContent = content
  return e
}

function niceMax (v) {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v)
}

function frame (svg, max) {
  const plotH = H - TOP - BOTTOM
  svg.replaceChildren(
    el('line', { x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM, class: 'axis' }),
    el('line', { x1: LEFT, y1: H - BOTTOM, x2: W, y2: H - BOTTOM, class: 'axis' }),
    el('line', { x1: LEFT - 3, y1: TOP, x2: LEFT, y2: TOP, class: 'axis' }),
    el('text', { x: LEFT - 5, y: TOP + 4, 'text-anchor': 'end' }, `${max}`),
    el('text', { x: LEFT - 5, y: H - BOTTOM, 'text-anchor': 'end' }, '0'),
    el('text', { x: LEFT, y: H - 2 }, `−${SPAN} s`),
    el('text', { x: W, y: H - 2, 'text-anchor': 'end' }, 'now')
  )
  return { plotH, xOf: (i) => LEFT + (i + 0.5) * (W - LEFT) / SPAN, yOf: (v) => TOP + plotH - (v / max) * plotH }
}

function polyline (points, cls) {
  return el('polyline', { points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '), class: cls })
}

function renderCharts () {
  const last = history.slice(-SPAN)
  const pad = SPAN - last.length
  const rate = $('rate-chart')
  const maxRate = niceMax(Math.max(0, ...last.map((b) => Math.max(b.requests, b.responses))))
  const r = frame(rate, maxRate)
  const barW = (W - LEFT) / SPAN - 1
  last.forEach((b, i) => {
    if (b.requests > 0) rate.append(el('rect', { x: r.xOf(i + pad) - barW / 2, y: r.yOf(b.requests), width: barW, height: r.plotH - (r.yOf(b.requests) - TOP), class: 'requests' }))
  })
  rate.append(polyline(last.map((b, i) => [r.xOf(i + pad), r.yOf(b.responses)]), 'responses'))
  rate.dataset.commands = String(last.reduce((n, b) => n + b.requests, 0))
  rate.dataset.responses = String(last.reduce((n, b) => n + b.responses, 0))

  const lat = $('latency-chart')
  const maxLat = niceMax(Math.max(0, ...last.map((b) => b.p95 ?? 0)))
  const l = frame(lat, maxLat)
  for (const k of ['p50', 'p95']) {
    // A dot per second that had responses, joined across consecutive seconds.
    let run = []
    const flush = () => { if (run.length > 1) lat.append(polyline(run, k)); run = [] }
    last.forEach((b, i) => {
      if (b[k] === null) return flush()
      const [x, y] = [l.xOf(i + pad), l.yOf(b[k])]
      run.push([x, y])
      lat.append(el('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 2, class: k }))
    })
    flush()
  }
  lat.dataset.points = String(last.filter((b) => b.p95 !== null).length)
}

// --- filter, countdowns ---------------------------------------------------------

function applyFilter (row) {
  const q = $('filter').value.trim().toLowerCase()
  let show = q === '' || q.split(/\s+/).every((w) => row.dataset.search.includes(w))
  if (row.dataset.requestId !== undefined) {
    const want = $('filter-state').value
    const x = exchanges.get(row.dataset.requestId)
    if (want === 'awaiting') show &&= x.state === 'open'
    if (want === 'problem') show &&= isProblem(x)
    if (want === 'complete') show &&= x.state === 'complete'
  }
  row.classList.toggle('hidden', !show)
}

function filterAll () {
  document.querySelectorAll('#exchanges tr, #devices tr, #errors li').forEach(applyFilter)
}
$('filter').addEventListener('input', filterAll)
$('filter-state').addEventListener('change', filterAll)

function countdowns () {
  for (const c of document.querySelectorAll('.countdown[data-deadline]')) {
    const left = Math.max(0, Math.ceil((Number(c.dataset.deadline) - now()) / 1000))
    c.textContent = `${left} s left`
  }
}
setInterval(() => {
  countdowns()
  for (const td of document.querySelectorAll('#devices td.seen')) td.textContent = ago(Number(td.dataset.at))
}, 500)

// --- the broker, as the server's connections see it -----------------------------------

function renderBroker (b) {
  $('broker-url').textContent = b.url
  // The worse of the two connections (the monitor watches, the producer sends).
  const worst = [b.monitor, b.producer].find((c) => c.state !== 'connected') ?? b.monitor
  const light = $('broker-state')
  light.className = `light ${worst.state}`
  light.dataset.state = worst.state
  const words = { connected: 'broker connected', offline: 'broker offline', reconnecting: 'broker unreachable', closed: 'broker connection closed', connecting: 'broker: connecting…' }
  light.textContent = words[worst.state] ?? `broker ${worst.state}`
  if (worst.down) light.textContent += ` since ${time(worst.down)}`
  const role = (c) => `${c.state}${c.detail ? ` (${c.detail})` : ''}, since ${time(c.since)}`
  light.title = `monitor: ${role(b.monitor)}\nproducer: ${role(b.producer)}`
  // Why, below the header, while it lasts.
  const banner = $('broker-banner')
  banner.hidden = worst.state === 'connected'
  banner.textContent = worst.state === 'connected'
    ? ''
    : `No connection to ${b.url}${worst.detail ? `: ${worst.detail}` : ''}. The dashboard keeps trying; traffic meanwhile is not seen, and a command sent waits for the broker up to its timeout.`
}

// --- the stream -----------------------------------------------------------------------

const events = new EventSource('events')
events.addEventListener('open', () => { $('status').textContent = 'page: live'; $('status').className = 'link live' })
events.addEventListener('error', () => {
  // CLOSED: the server refused the stream (a new run has a new token), so no retry.
  const refused = events.readyState === EventSource.CLOSED
  $('status').textContent = refused ? 'page: refused: open the URL the dashboard printed' : 'page: link to the dashboard lost, retrying…'
  $('status').className = 'link'
})
events.addEventListener('snapshot', (m) => {
  const s = JSON.parse(m.data)
  clockOffset = s.now - Date.now()
  history = s.history
  lastMinute = s.lastMinute
  $('exchanges').replaceChildren(); $('errors').replaceChildren(); exchanges.clear(); devices.clear(); errorCount = 0
  $('no-errors').hidden = false
  for (const d of s.devices) devices.set(d.id, d)
  s.exchanges.forEach(renderExchange)
  s.errors.forEach(renderError)
  renderBroker(s.broker)
  renderDevices()
  renderCharts()
  renderSummary()
})
events.addEventListener('exchange', (m) => renderExchange(JSON.parse(m.data)))
events.addEventListener('problem', (m) => renderError(JSON.parse(m.data)))
events.addEventListener('broker', (m) => renderBroker(JSON.parse(m.data)))
events.addEventListener('device', (m) => {
  const d = JSON.parse(m.data)
  devices.set(d.id, d)
  renderDevices()
})
events.addEventListener('tick', (m) => {
  const t = JSON.parse(m.data)
  clockOffset = t.now - Date.now()
  history.push(t.bucket)
  lastMinute = t.lastMinute
  if (history.length > SPAN) history.shift()
  renderCharts()
  renderSummary()
})

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
