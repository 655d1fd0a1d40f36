'use strict'
// The public module: the native binding (loaded by the generated native.js)
// plus what is JavaScript by nature: async iteration, AbortSignal,
// `await using`, the roles' EventEmitter side and the logger. Types and
// docs: index.d.ts.

const native = require('./native.js')

const { EventEmitter } = require('node:events')

const { Producer, Exchange, Consumer, Monitor } = native

// --- Exchange: an async iterator of replies --------------------------------

Exchange.prototype[Symbol.asyncIterator] = function () {
  return this
}

// `for await` calls return() when the loop exits early (break, throw):
// end the exchange then, as dropping it would in Rust.
Exchange.prototype.return = async function (value) {
  if (!this.cancelled) this.cancel()
  return { done: true, value }
}

// --- Producer.send: AbortSignal --------------------------------------------

const kDetach = Symbol('oc2mqtt.detachSignal')
const nativeSend = Producer.prototype.send
const nativeNext = Exchange.prototype.next
const nativeCollect = Exchange.prototype.collect

function isAbortSignal (v) {
  return typeof AbortSignal === 'function' && v instanceof AbortSignal
}

Producer.prototype.send = function send (command, options) {
  const signal = options == null ? undefined : options.signal
  if (signal != null && !isAbortSignal(signal)) {
    const err = new TypeError('The "options.signal" property must be an instance of AbortSignal.')
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  const exchange = nativeSend.call(this, command, options)
  if (signal != null) {
    if (signal.aborted) {
      exchange.cancel()
    } else {
      const onAbort = () => exchange.cancel()
      signal.addEventListener('abort', onAbort, { once: true })
      exchange[kDetach] = () => signal.removeEventListener('abort', onAbort)
    }
  }
  return exchange
}

// sendCollect is send().collect() in one native call; a signal needs the
// Exchange to cancel, so a call with one takes that path. The native side
// keeps the exchanges started while others are open for one spawn at the
// end of the turn (a burst of them costs the runtime's thread one wake-up,
// not one each): the first call of a turn queues that flush.
const nativeSendCollect = Producer.prototype.sendCollect
let flushQueued = false
function flushSpawns () {
  flushQueued = false
  native.__flushSpawns()
}
const nativeSendCollectJson = Producer.prototype._sendCollectJson

// The JSON text of `value` when JSON.stringify makes exactly the value the
// native side's walk of its properties would (convert::json): only strings,
// booleans, safe integers, null, undefined, arrays and plain objects, no
// toJSON; undefined otherwise (a function, a symbol, a bigint, NaN, a float,
// a Date, a class instance, an object inside itself, ...), for the walk to
// convert or to refuse with its own error. (A getter of such a command runs
// twice: once here, once in the walk.)
function plainJson (value) {
  let plain = true
  let text
  try {
    text = JSON.stringify(value, function (key, v) {
      // this[key] !== v: a toJSON made v (a Date's string, ...).
      if (!plain || this[key] !== v) {
        plain = false
        return undefined
      }
      switch (typeof v) {
        case 'string':
        case 'boolean':
        case 'undefined':
          return v
        case 'number':
          if (!Number.isSafeInteger(v)) plain = false
          return v
        case 'object': {
          if (v === null) return v
          const proto = Object.getPrototypeOf(v)
          if (Array.isArray(v) ? proto !== Array.prototype : proto !== Object.prototype && proto !== null) plain = false
          return v
        }
        default:
          plain = false
          return undefined
      }
    })
  } catch {
    return undefined
  }
  return plain ? text : undefined
}

if (nativeSendCollect !== undefined) {
  Producer.prototype.sendCollect = function sendCollect (command, options) {
    if (options != null && options.signal != null) return this.send(command, options).collect()
    // A command object (a message has a body) of plain JSON goes as its text.
    const text = command !== null && typeof command === 'object' && !Array.isArray(command) && !('body' in command) ? plainJson(command) : undefined
    const summary = (text !== undefined ? nativeSendCollectJson.call(this, text, options) : undefined) ?? nativeSendCollect.call(this, command, options)
    if (!flushQueued) {
      flushQueued = true
      queueMicrotask(flushSpawns)
    }
    return summary
  }
}

function detach (exchange) {
  const d = exchange[kDetach]
  if (d !== undefined) {
    exchange[kDetach] = undefined
    d()
  }
}

if (nativeNext !== undefined) {
  Exchange.prototype.next = function next () {
    if (this[kDetach] === undefined) return nativeNext.call(this)
    return nativeNext.call(this).then((r) => {
      if (r.done) detach(this)
      return r
    }, (e) => {
      detach(this)
      throw e
    })
  }
  Exchange.prototype.collect = function collect () {
    if (this[kDetach] === undefined) return nativeCollect.call(this)
    return nativeCollect.call(this).finally(() => detach(this))
  }
}

// --- Consumer.serve: any handler's outcome becomes `{ response }` or `{ error, kind? }`
//
// The native side reads `{ response }` or `{ error, kind? }` on the
// JavaScript thread, or a Promise that always fulfils with one (when the
// handler returned a Promise or another thenable); a throw, a rejection or
// a non-Error rejection value all become `{ error }`. What each means
// (nothing: 200, a number: that status, an object: a response, an error:
// 500 with its text) and every text of a result that is not a response
// are the core's (`HandlerResult`); here the error only becomes text: an
// Error's message and name, nothing (`reject()`) as no text, anything else
// as JSON.

function failure (e) {
  if (e instanceof Error) return { error: String(e.message ?? ''), kind: String(e.name ?? '') }
  if (e === undefined || e === null) return { error: '' }
  try {
    return { error: typeof e === 'string' ? e : JSON.stringify(e) ?? String(e) }
  } catch {
    return { error: String(e) }
  }
}

const nativeServe = Consumer.prototype.serve
Consumer.prototype.serve = function serve (handler) {
  if (typeof handler !== 'function') {
    const err = new TypeError(`The "handler" argument must be a function. Received ${handler === null ? 'null' : typeof handler}`)
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  return nativeServe.call(this, (command, incoming) => {
    let result
    try {
      result = handler(command, incoming)
      // Answered at once: no Promise to make and wait for.
      if (result === null || (typeof result !== 'object' && typeof result !== 'function') || typeof result.then !== 'function') {
        return { response: result }
      }
    } catch (e) {
      return failure(e)
    }
    return Promise.resolve(result).then((response) => ({ response }), failure)
  })
}

// --- Connection events: every role is an EventEmitter, as mqtt.js clients are
//
// The core reports connection changes (connected, offline, reconnecting,
// a failed attempt, closed); they are emitted here with mqtt.js's names:
// 'connect', 'offline', 'reconnect', 'error', and 'close' on each
// disconnection, then 'end' once closed. 'error' is only emitted when
// someone listens (an unheard 'error' would throw). The native side calls
// the listener through a weak reference; a role keeps the process alive
// while it is connected and someone listens to its connection events (as
// an mqtt.js client does until end()), through a timer that never fires.

const CONNECTION_EVENTS = ['connect', 'offline', 'reconnect', 'error', 'close', 'end']
const kOnline = Symbol('oc2mqtt.online')
const kLive = Symbol('oc2mqtt.live')
const kKeepAlive = Symbol('oc2mqtt.keepAlive')
const kFirstEvent = Symbol('oc2mqtt.firstEvent')
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

function keepAlive (role) {
  const want = role[kLive] === true && CONNECTION_EVENTS.some((e) => role.listenerCount(e) > 0)
  if (want && role[kKeepAlive] === undefined) {
    role[kKeepAlive] = setInterval(() => {}, 0x7fffffff)
  } else if (!want && role[kKeepAlive] !== undefined) {
    clearInterval(role[kKeepAlive])
    role[kKeepAlive] = undefined
  }
}

function connectionListener (role) {
  return (e) => {
    role[kFirstEvent] = true
    switch (e.type) {
      case 'connect':
        role[kOnline] = true
        role.emit('connect', e)
        break
      case 'offline':
        if (role[kOnline]) {
          role[kOnline] = false
          role.emit('close')
        }
        role.emit('offline', e)
        break
      case 'reconnect':
        role.emit('reconnect', e)
        break
      case 'error':
        if (role.listenerCount('error') > 0) role.emit('error', e.error)
        break
      case 'end':
        role[kLive] = false
        if (role[kOnline]) {
          role[kOnline] = false
          role.emit('close')
        }
        role.emit('end')
        keepAlive(role)
        break
    }
  }
}

for (const Role of [Producer, Consumer, Monitor]) {
  Object.setPrototypeOf(Role.prototype, EventEmitter.prototype)
  const nativeConnect = Role.prototype.connect
  Role.prototype.connect = async function connect () {
    // Set before connecting: the first 'connect' comes before this resolves.
    this[kFirstEvent] = false
    this._setEventSink(connectionListener(this))
    await nativeConnect.call(this)
    // The first connection event reached the JavaScript thread before
    // connect() settled, through another threadsafe function, which libuv
    // may run after the Promise's in the same pass: let it be emitted first
    // (a few turns of the loop at most; it is already queued).
    for (let i = 0; i < 10 && !this[kFirstEvent]; i++) await new Promise((resolve) => setImmediate(resolve))
    this[kLive] = true
    keepAlive(this)
  }
  for (const name of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener', 'off', 'removeListener', 'removeAllListeners']) {
    const original = EventEmitter.prototype[name]
    Role.prototype[name] = function (...args) {
      original.apply(this, args)
      keepAlive(this)
      return this
    }
  }
  // `await using producer = new Producer(...)` closes it at the end of the block.
  Role.prototype[asyncDispose] = function () {
    return this.close()
  }
}

// --- Logging: the core's log records, to a logger of the user's choice -----

// The names are core's (LogLevel::ALL), most severe first.
const LOG_LEVELS = native.__logLevels()

function setLogger (logger, options) {
  const level = options == null || options.level === undefined ? 'info' : options.level
  if (!LOG_LEVELS.includes(level)) {
    const err = new TypeError(`The "options.level" property must be one of ${LOG_LEVELS.map((l) => `'${l}'`).join(', ')}. Received ${JSON.stringify(level)}`)
    err.code = 'ERR_INVALID_ARG_VALUE'
    throw err
  }
  if (logger == null) return native.__setLogSink(null, level)
  let write
  if (typeof logger === 'function') {
    write = logger
  } else if (typeof logger === 'object') {
    // console, pino, winston, ...: one line to the method of the level.
    write = (r) => {
      const method = logger[r.level] ?? (r.level === 'trace' ? logger.debug : undefined) ?? logger.log
      if (typeof method === 'function') method.call(logger, `oc2mqtt: ${r.text}`)
    }
  } else {
    const err = new TypeError(`The "logger" argument must be a function, an object with log methods, or null. Received ${typeof logger}`)
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  // A logger that throws loses its record; the client goes on.
  native.__setLogSink((record) => {
    try {
      write(record)
    } catch {}
  }, level)
}

// --- Monitor: an EventEmitter and an async iterator over one event loop ----
//
// One loop pulls events from the native side once anybody listens or
// iterates; it emits each event, and queues it for iterators. It ends when
// the monitor is closed ('close' is emitted), and only then can the
// process exit on its own.

// Core's names of monitor events (MonitorEvent::KINDS).
const MONITOR_EVENTS = new Set(native.__monitorEvents())
const kPump = Symbol('oc2mqtt.monitorPump')
const kConnected = Symbol('oc2mqtt.connected')
const kWanted = Symbol('oc2mqtt.pumpWanted')
const nativeMonitorBatch = Monitor.prototype._nextBatch
const nativeMonitorConnect = Monitor.prototype.connect
const nativeMonitorClose = Monitor.prototype.close

// Listeners added before connect() start the loop once connected.
Monitor.prototype.connect = async function connect () {
  await nativeMonitorConnect.call(this)
  this[kConnected] = true
  if (this[kWanted]) pump(this)
}

Monitor.prototype.close = async function close () {
  this[kConnected] = false
  await nativeMonitorClose.call(this)
}

function pump (monitor) {
  let p = monitor[kPump]
  if (p !== undefined) return p
  p = { queue: [], waiters: [], iterating: false, done: false, error: undefined }
  monitor[kPump] = p
  const settle = () => {
    while (p.waiters.length > 0 && (p.queue.length > 0 || p.done)) {
      const w = p.waiters.shift()
      if (p.queue.length > 0) w.resolve({ done: false, value: p.queue.shift() })
      else if (p.error !== undefined) w.reject(p.error)
      else w.resolve({ done: true, value: undefined })
    }
  }
  const loop = async () => {
    for (;;) {
      let batch
      try {
        // Every event waiting (up to core's batch) in one Promise, rather than one per event.
        batch = await nativeMonitorBatch.call(monitor)
      } catch (e) {
        p.error = e
        break
      }
      if (batch === null) break
      for (const event of batch) {
        if (p.iterating) p.queue.push(event)
        monitor.emit(event.type, event)
      }
      settle()
    }
    p.done = true
    settle()
    if (p.error !== undefined && monitor.listenerCount('error') > 0) monitor.emit('error', p.error)
  }
  loop()
  return p
}

for (const name of ['on', 'addListener', 'once', 'prependListener', 'prependOnceListener']) {
  const original = Monitor.prototype[name]
  Monitor.prototype[name] = function (event, listener) {
    original.call(this, event, listener)
    if (MONITOR_EVENTS.has(event)) {
      if (this[kConnected]) pump(this)
      else this[kWanted] = true
    }
    return this
  }
}

Monitor.prototype.next = function next () {
  const p = pump(this)
  p.iterating = true
  if (p.queue.length > 0) return Promise.resolve({ done: false, value: p.queue.shift() })
  if (p.done) return p.error !== undefined ? Promise.reject(p.error) : Promise.resolve({ done: true, value: undefined })
  return new Promise((resolve, reject) => p.waiters.push({ resolve, reject }))
}

Monitor.prototype[Symbol.asyncIterator] = function () {
  return this
}

// Leaving a `for await` loop early stops queueing events for iterators
// (listeners keep receiving them); the monitor stays connected.
Monitor.prototype.return = async function (value) {
  const p = this[kPump]
  if (p !== undefined) {
    p.iterating = false
    p.queue.length = 0
  }
  return { done: true, value }
}

// Named one by one so that `import { Producer } from 'oc2mqtt'` works from
// ES modules (Node finds CommonJS exports by reading these assignments).
module.exports.decode = native.decode
module.exports.encode = native.encode
module.exports.Topics = native.Topics
module.exports.filterMatches = native.filterMatches
module.exports.validateId = native.validateId
module.exports.sharedSubscription = native.sharedSubscription
module.exports.Correlator = native.Correlator
module.exports.Deduplicator = native.Deduplicator
module.exports.ConsumerRules = native.ConsumerRules
module.exports.Request = native.Request
module.exports.Producer = native.Producer
module.exports.Exchange = native.Exchange
module.exports.Consumer = native.Consumer
module.exports.Incoming = native.Incoming
module.exports.Monitor = native.Monitor
module.exports.setLogger = setLogger
// Which build of the addon was loaded ('native'); declared in index.d.ts.
module.exports.__napiBindingTarget = native.__napiBindingTarget
