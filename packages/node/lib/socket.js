'use strict';
// Socket: the JavaScript face of one connection. Handlers get it as `ctx`
// (typed handlers), `socket` (stream style and WebSocketResponse hooks) or
// `this.socket` (class endpoints). It forwards sends and closes to the
// native Connection and keeps per-connection order for async handlers.
const { native, ECLOSED, CODEC } = require('./native');
const { WebSocketMessage } = require('./message');
const errors = require('./errors');
const topics = require('./topics');


function isThenable(v) {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
}

function sendError(rc) {
  if (rc === ECLOSED) return new errors.ConnectionClosedError();
  return errors.fromInfo({ code: native.errorName(rc), errno: rc, message: native.errorMessage(rc) });
}

class Socket {
  constructor(conn, request, endpoint) {
    this._conn = conn;
    this._endpoint = endpoint;
    this.request = request;
    this.id = conn.id();
    this.state = 'connecting'; // 'open' once the 101 is out, 'closed' after on_close
    this.closeCode = undefined;
    this.closeReason = undefined;
    this._pending = null; // sends made before the upgrade completed
    this._busy = false; // an async handler is running: the connection is paused
    this._backlog = null; // deliveries waiting for the running handler
    this._opened = false;
    this._inbox = null; // stream style: received messages held, not yet consumed
    this._waiters = null; // stream style: consumers waiting for a message
    this._closed = null;
    this._closedResolve = null;
    this._drain = null; // what awaited sends wait on while the connection is not writable
    this._drainResolve = null;
    this._inFail = false; // Endpoint#fail is asking the error handler
    this._failing = false; // Endpoint#crash: 1011 without asking it
    this._answer = undefined; // an asynchronous error handler's pending answer
    this._abort = null; // the AbortController behind `signal`, made on first use
  }

  /**
   * An AbortSignal aborted when the connection ends (its reason a
   * ConnectionClosedError with the close code): pass it to fetch(), timers
   * and other cancellable work so a handler stops when its client leaves.
   */
  get signal() {
    if (!this._abort) {
      this._abort = new AbortController();
      if (this.state === 'closed') this._abort.abort(this._closedError());
    }
    return this._abort.signal;
  }

  _closedError() {
    return new errors.ConnectionClosedError('connection is closed',
      { closeCode: this.closeCode, reason: this.closeReason });
  }

  get params() { return this.request.params; }
  get query() { return this.request.query; }
  get headers() { return this.request.headers; }
  get path() { return this.request.path; }
  get subprotocol() { return this.request.subprotocol; }
  get remoteAddress() { return this.request.remoteAddress; }
  /** Bytes queued for this connection and not yet written to the socket. */
  get bufferedAmount() { return this._conn.bufferedAmount(); }
  get isOpen() { return this.state === 'open' && this._conn.isOpen(); }

  /** Resolves with { code, reason } once the connection has ended. */
  get closed() {
    if (!this._closed) {
      if (this.state === 'closed') {
        this._closed = Promise.resolve({ code: this.closeCode, reason: this.closeReason });
      } else {
        this._closed = new Promise((resolve) => { this._closedResolve = resolve; });
      }
    }
    return this._closed;
  }

  /**
   * Run a send now (or after the upgrade); see _flow for what it returns.
   * The native sends answer 0 (sent, still writable), 1 (sent, past
   * sendHighWater) or a negative error code; undefined (sent) asks _flow.
   */
  _do(fn) {
    if (this.state === 'connecting') {
      (this._pending ??= []).push(fn);
      return undefined;
    }
    const rc = fn();
    if (rc < 0) throw sendError(rc);
    return rc === 0 ? undefined : this._flow();
  }

  /**
   * Flow control (docs/sessions.md): undefined while the connection is
   * writable (its queue at or below sendHighWater), else a promise that
   * resolves on the core's drain notification or the close. Awaiting it
   * paces a sender to its peer; a send that is not awaited keeps going until
   * maxBackpressure closes the connection (1008).
   */
  _flow() {
    if (this._conn.writable() || !this._conn.isOpen()) return undefined;
    this._drain ??= new Promise((resolve) => { this._drainResolve = resolve; });
    return this._drain;
  }

  /** The core's onDrain (or the close): wake the awaited sends. */
  _drained() {
    const resolve = this._drainResolve;
    this._drain = this._drainResolve = null;
    if (resolve) resolve();
  }

  /** A text frame with `s`. */
  sendText(s) {
    if (typeof s !== 'string') s = String(s);
    if (this.state === 'open') {
      const rc = this._conn.sendText(s); // the hot path: no closure, no queue
      if (rc === 0) return undefined;
      if (rc < 0) throw sendError(rc);
      return this._flow();
    }
    return this._do(() => this._conn.sendText(s));
  }

  /** A binary frame with the bytes of `b` (Buffer, Uint8Array or ArrayBuffer). */
  sendBinary(b) {
    const bytes = b instanceof ArrayBuffer ? new Uint8Array(b) : b;
    return this._do(() => this._conn.sendBinary(bytes));
  }

  /** A text frame with JSON.stringify(value). */
  sendJson(value) {
    const s = JSON.stringify(value);
    if (s === undefined) throw new errors.SerializationError('value cannot be JSON');
    return this._do(() => this._conn.sendText(s));
  }

  /**
   * Send a value. On a JSON or MessagePack endpoint it is encoded with the
   * endpoint's codec (and checked against the response schema); on a raw
   * endpoint strings go as text, bytes as binary, other values as JSON text.
   * A WebSocketMessage is sent as it is.
   */
  send(value) {
    if (value instanceof WebSocketMessage) {
      return value.isText() ? this.sendText(value.data) : this.sendBinary(value.data);
    }
    if (this._endpoint.codec === CODEC.json) return this._sendJsonValue(value);
    if (this._endpoint.codec !== CODEC.raw) return this._do(() => this._sendValue(value));
    if (typeof value === 'string') return this.sendText(value);
    if (value instanceof Uint8Array || value instanceof ArrayBuffer) return this.sendBinary(value);
    return this.sendJson(value);
  }

  /** Sent: undefined (writability unknown, _do asks); else throws. */
  _sendValue(value) {
    const info = this._conn.sendValue(value);
    if (info === undefined) return undefined;
    throw errors.fromInfo(info);
  }

  /**
   * JSON endpoints: JSON.stringify is far cheaper than walking the value
   * through Node-API, so values go as JSON text (the core decodes it again
   * only to check a response schema). What JSON.stringify refuses (BigInt,
   * cycles) or cannot represent at the top level takes the native path,
   * which encodes BigInts and reports the rest as SerializationError.
   */
  _sendJsonValue(value) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined;
    }
    if (text === undefined) return this._do(() => this._sendValue(value));
    if (!this._endpoint.checked) return this._do(() => this._conn.sendText(text));
    return this._do(() => {
      const info = this._conn.sendJsonText(text);
      if (info === undefined) return undefined;
      throw errors.fromInfo(info);
    });
  }

  /** Start the close handshake (code 1000 by default; reason at most 123 bytes). */
  close(code = 1000, reason = '') {
    if (this.state === 'connecting') {
      (this._pending ??= []).push(() => this._conn.close(code, reason));
      return;
    }
    const rc = this._conn.close(code, reason);
    if (rc !== 0 && rc !== ECLOSED) throw sendError(rc);
  }

  // ---- topics -------------------------------------------------------------

  /**
   * Receive every app.publish(topic, ...) until unsubscribed or closed (ConfigError: bad topic).
   * With { since }: on a topic with history (app.topic), a position ('' for none): every
   * retained publication after it comes first, then the live ones; returns
   * { recovered, reason, position, replayed } (when not recovered, the client also gets
   * { topic, type: 'truncated', offset }).
   */
  subscribe(topic, { since } = {}) {
    if (since === undefined) {
      const rc = this._conn.subscribe(topics.checkTopic(topic));
      if (rc !== 0) throw topics.topicError(rc);
      return undefined;
    }
    return topics.subscribeSince(this._conn, topic, since);
  }

  /** End a subscription; false when the connection was not subscribed. */
  unsubscribe(topic) {
    const rc = this._conn.unsubscribe(topics.checkTopic(topic));
    if (rc === topics.ENOTFOUND) return false;
    if (rc !== 0) throw topics.topicError(rc);
    return true;
  }

  /** The topics this connection is subscribed to (in no particular order). */
  get topics() { return this._conn.topics(); }

  // ---- stream style -------------------------------------------------------

  /** The next message, or null once the connection has closed. */
  receive() {
    if (this._inbox && this._inbox.length) {
      this._conn.consumed(1);
      return Promise.resolve(this._inbox.shift());
    }
    if (this.state === 'closed') return Promise.resolve(null);
    return new Promise((resolve) => (this._waiters ??= []).push(resolve));
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const msg = await this.receive();
      if (msg === null) return;
      yield msg;
    }
  }

  _push(msg) {
    if (this._waiters && this._waiters.length) {
      this._waiters.shift()(msg);
      return;
    }
    // Held messages count against maxQueuedMessages: past it the core stops
    // reading this connection until the handler has taken some.
    (this._inbox ??= []).push(msg);
    this._conn.hold();
  }

  // ---- lifecycle (called by the app) -------------------------------------

  _open() {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    const pending = this._pending;
    this._pending = null;
    if (pending) {
      for (const fn of pending) {
        if (fn() < 0) break;
      }
    }
  }

  _ended(code, reason) {
    this.state = 'closed';
    this.closeCode = code;
    this.closeReason = reason;
    this._pending = null;
    if (this._abort && !this._abort.signal.aborted) this._abort.abort(this._closedError());
    if (this._closedResolve) this._closedResolve({ code, reason });
    else this._closed = Promise.resolve({ code, reason });
    this._drained();
    const waiters = this._waiters;
    this._waiters = null;
    if (waiters) for (const w of waiters) w(null);
  }

  /**
   * Run deliveries one at a time: while one returns a pending promise the
   * connection is paused, so messages reach handlers in order.
   */
  /** A message delivery: the fast path of _serial (no closure unless busy). */
  _deliver(hooks, payload, value, handler) {
    if (this._busy) {
      (this._backlog ??= []).push(() => hooks.message(this, payload, value, handler));
      return;
    }
    let r;
    try {
      r = hooks.message(this, payload, value, handler);
    } catch (err) {
      r = this._endpoint.fail(this, err);
    }
    if (!isThenable(r)) return;
    this._busy = true;
    this._conn.pause();
    r.then(undefined, (err) => this._endpoint.fail(this, err)).then(() => this._next());
  }

  _serial(fn) {
    if (this._busy) {
      (this._backlog ??= []).push(fn);
      return;
    }
    const r = this._run(fn);
    if (!isThenable(r)) return;
    this._busy = true;
    this._conn.pause();
    r.then(() => this._next());
  }

  /** fn's result; a throw or a rejection goes to the endpoint's error path. */
  _run(fn) {
    try {
      const r = fn();
      return isThenable(r) ? r.then(undefined, (err) => this._endpoint.fail(this, err)) : r;
    } catch (err) {
      return this._endpoint.fail(this, err);
    }
  }

  _next() {
    while (this._backlog && this._backlog.length) {
      const r = this._run(this._backlog.shift());
      if (isThenable(r)) {
        r.then(() => this._next()); // still paused: the next delivery waits
        return;
      }
    }
    this._busy = false;
    this._conn.resume();
  }
}

module.exports = { Socket, isThenable };
