'use strict';
// App and the four endpoint styles (callback, typed handler, class endpoint,
// stream). Each style is a small set of hooks; Endpoint turns the native
// callbacks into hook calls and owns the shared rules: async handlers pause
// their connection, a handler's return value is sent, errors go to the
// user's error handler first and otherwise close that connection with 1011.
const { EventEmitter } = require('node:events');
const workers = require('./workers');
const { native, CODEC, POLICY, CONNECT_DEFER } = require('./native');
const { WebSocketMessage } = require('./message');
const { Socket, isThenable } = require('./socket');
const errors = require('./errors');
const topics = require('./topics');

const { Reject, MESSAGE_ERRORS } = errors;
const INSTANCE = Symbol('wirecore.instance');
const SOCKET = Symbol('wirecore.socket');

/** The handlers a callback-style endpoint returns for each connection. */
class WebSocketResponse {
  /**
   * @param {{ onMessage?: Function, onConnect?: Function, onClose?: Function, onError?: Function }} [handlers]
   */
  constructor(handlers = {}) {
    for (const name of ['onMessage', 'onConnect', 'onClose', 'onError']) {
      if (handlers[name] !== undefined) {
        if (typeof handlers[name] !== 'function') throw new TypeError(`${name} must be a function`);
        this[name] = handlers[name];
      }
    }
  }
}

/**
 * Base class of class endpoints: one instance per connection. Subclasses set
 * `static path`, `static serializer` ('json' | 'msgpack'), `static messages`
 * ({ name: JSON Schema }) and define receiveName(data) methods.
 */
class WebSocketEndpoint {
  /** The connection's Socket (send, close, request, params ...). */
  get socket() { return this[SOCKET]; }
  get request() { return this[SOCKET].request; }
  get params() { return this[SOCKET].request.params; }
  get query() { return this[SOCKET].request.query; }
  send(value) { return this[SOCKET].send(value); }
  close(code, reason) { this[SOCKET].close(code, reason); }
  subscribe(topic, options) { return this[SOCKET].subscribe(topic, options); }
  unsubscribe(topic) { return this[SOCKET].unsubscribe(topic); }
  get topics() { return this[SOCKET].topics; }
}

function schemaText(schema, what) {
  if (schema === undefined || schema === null) return undefined;
  if (typeof schema === 'string') return schema;
  if (typeof schema === 'object' || typeof schema === 'boolean') return JSON.stringify(schema);
  throw new TypeError(`${what} must be a JSON Schema object`);
}

function codecOf(serializer) {
  if (serializer === undefined) return CODEC.json;
  if (!(serializer in CODEC)) throw new TypeError("serializer must be 'json', 'msgpack' or 'raw'");
  return CODEC[serializer];
}

/** receiveChatMessage for 'chat_message', 'chat-message' or 'chatMessage'. */
function receiverName(key) {
  const words = String(key).split(/[^A-Za-z0-9]+/).filter(Boolean);
  return 'receive' + words.map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

/** permessage-deflate mode number of the core (wire_compression). */
const COMPRESSION = { shared: 0, off: 1, dedicated: 2 };
function compressionMode(mode) {
  if (mode === undefined || mode === true) return 0;
  if (mode === false) return 1;
  if (!Object.prototype.hasOwnProperty.call(COMPRESSION, mode)) {
    throw new TypeError("compression must be 'shared', 'dedicated' or 'off'");
  }
  return COMPRESSION[mode];
}

const ENDPOINT_OPTIONS = ['maxPayload', 'idleTimeout', 'pongTimeout', 'maxBackpressure',
  'maxQueuedMessages', 'sendTimeout', 'maxMessageFragments', 'messageTimeout', 'compression',
  'compressionThreshold', 'compressionWindowBits', 'allowedOrigins', 'subprotocols',
  'invalidMessages', 'formatAssert', 'messageRate', 'messageBurst', 'byteRate', 'byteBurst',
  'rateLimitAction'];

/** Client limits: what a message over messageRate / byteRate does. */
const RATE_ACTION = { drop: 0, close: 1 };

/** One registered route: native callbacks in, hook calls out. */
class Endpoint {
  constructor(app, path, codec, hooks) {
    this.app = app;
    this.path = path;
    this.codec = codec;
    this.hooks = hooks;
    this.checked = false; // a response schema applies to sends
  }

  nativeHandlers() {
    return {
      onConnect: (conn, request) => this.connect(conn, request),
      onMessage: (conn, kind, payload, value, handler) => this.message(conn, kind, payload, value, handler),
      onClose: (conn, code, reason) => this.closed(conn, code, reason),
      onError: (conn, info) => this.error(conn, info),
      onDrain: (conn) => conn.socket && conn.socket._drained(),
    };
  }

  connect(conn, request) {
    const socket = new Socket(conn, request, this);
    conn.socket = socket;
    let r;
    try {
      r = this.hooks.connect(socket);
    } catch (err) {
      return this.refusal(socket, err);
    }
    if (r instanceof Reject) return r.status;
    if (!isThenable(r)) {
      setImmediate(() => this.open(socket));
      return 0;
    }
    r.then((v) => {
      if (v instanceof Reject) {
        conn.reject(v.status);
        socket._ended(1006, '');
      } else if (conn.accept() === 0) {
        setImmediate(() => this.open(socket));
      } else {
        socket._ended(1006, '');
      }
    }, (err) => {
      conn.reject(this.refusal(socket, err));
      socket._ended(1006, '');
    });
    return CONNECT_DEFER;
  }

  refusal(socket, err) {
    if (err instanceof Reject) return err.status;
    this.app._report(err, socket, this);
    return 500;
  }

  /** Runs once per accepted connection, before its first message. */
  open(socket) {
    if (socket._opened || socket.state === 'closed') return;
    socket._opened = true;
    socket._open();
    if (this.hooks.open) socket._serial(() => this.hooks.open(socket));
  }

  message(conn, kind, payload, value, handler) {
    const socket = conn.socket;
    if (!socket._opened) this.open(socket);
    // JSON values arrive as their validated text unless they need BigInts.
    if (value === undefined && this.codec === CODEC.json) value = JSON.parse(payload);
    socket._deliver(this.hooks, payload, value, handler);
  }

  closed(conn, code, reason) {
    const socket = conn.socket;
    if (!socket) return;
    socket._opened = true; // too late for the open hook
    socket._ended(code, reason);
    if (!this.hooks.close) return;
    try {
      const r = this.hooks.close(socket, code, reason);
      if (isThenable(r)) r.then(undefined, (err) => this.app._report(err, socket, this));
    } catch (err) {
      this.app._report(err, socket, this);
    }
  }

  /**
   * onError of the core: an invalid message, a protocol error, or a handler
   * failure reported by fail() (info is then the thrown value itself).
   * Returns true when the user's error handler took it.
   */
  error(conn, info) {
    const socket = conn && conn.socket;
    const handler = socket && !socket._failing && this.hooks.errorHandler(socket);
    if (!handler) return false;
    const failed = socket._inFail; // fail() below: info is what the handler threw
    const err = failed ? info : errors.fromInfo(info);
    if (!failed && !MESSAGE_ERRORS.has(info.code)) {
      // The connection closes anyway; the handler is told, its answer unused.
      try {
        const r = handler(err, socket);
        if (isThenable(r)) r.then(undefined, () => {});
      } catch { /* nothing to answer */ }
      return false;
    }
    let r;
    try {
      r = handler(err, socket);
    } catch (e) {
      if (failed && e !== err) this.app._report(e, socket, this);
      return false; // an invalid message goes to the policy, a failure to 1011
    }
    if (!isThenable(r)) {
      try {
        this.reply(socket, r);
      } catch (e) {
        this.crash(socket, e);
      }
      return true;
    }
    const answer = () => r.then((v) => this.reply(socket, v)).catch((e) => this.crash(socket, e));
    if (failed) socket._answer = answer(); // fail() hands it to whoever waits
    else socket._serial(answer);
    return true;
  }

  /** Send a handler's result; undefined and null send nothing. */
  reply(socket, value) {
    if (value === undefined || value === null || socket.state === 'closed') return;
    try {
      socket.send(value);
    } catch (err) {
      if (!(err instanceof errors.ConnectionClosedError)) throw err;
    }
  }

  /**
   * A handler threw: conn.fail asks the user's error handler (error() above)
   * and, unless it answers, the core closes with 1011. Returns the pending
   * answer of an asynchronous error handler, if any.
   */
  fail(socket, err) {
    socket._answer = undefined;
    socket._inFail = true;
    let rc;
    try {
      rc = socket._conn.fail(err);
    } finally {
      socket._inFail = false;
    }
    if (rc === 1) {
      const answer = socket._answer;
      socket._answer = undefined;
      return answer;
    }
    if (socket.state !== 'closed') this.app._report(err, socket, this);
    return undefined;
  }

  /** The error handler itself failed: 1011 without asking it again. */
  crash(socket, err) {
    this.app._report(err, socket, this);
    socket._failing = true;
    try {
      socket._conn.fail(err);
    } finally {
      socket._failing = false;
    }
  }
}

// ---- the four endpoint styles ----------------------------------------------

function callbackHooks(factory) {
  return {
    connect(socket) {
      const r = factory(socket.request, socket);
      const keep = (resp) => {
        if (resp instanceof Reject) return resp;
        if (!resp || typeof resp !== 'object') {
          throw new TypeError('a websocket handler must return a WebSocketResponse');
        }
        socket[INSTANCE] = resp;
        return undefined;
      };
      return isThenable(r) ? r.then(keep) : keep(r);
    },
    open(socket) {
      const resp = socket[INSTANCE];
      return resp.onConnect ? resp.onConnect(socket) : undefined;
    },
    message(socket, payload) {
      const resp = socket[INSTANCE];
      if (!resp.onMessage) return undefined;
      const r = resp.onMessage(new WebSocketMessage(payload), socket);
      if (isThenable(r)) return r.then((v) => socket._endpoint.reply(socket, v));
      socket._endpoint.reply(socket, r);
      return undefined;
    },
    close(socket, code, reason) {
      const resp = socket[INSTANCE];
      return resp && resp.onClose ? resp.onClose(code, reason, socket) : undefined;
    },
    errorHandler(socket) {
      const resp = socket[INSTANCE];
      return resp && resp.onError ? resp.onError.bind(resp) : undefined;
    },
  };
}

function typedHooks(options, handler, codec) {
  return {
    connect(socket) {
      return options.onConnect ? options.onConnect(socket) : undefined;
    },
    message(socket, payload, value) {
      const r = handler(codec === CODEC.raw ? new WebSocketMessage(payload) : value, socket);
      if (isThenable(r)) return r.then((v) => socket._endpoint.reply(socket, v));
      socket._endpoint.reply(socket, r);
      return undefined;
    },
    close(socket, code, reason) {
      return options.onDisconnect ? options.onDisconnect(socket, code, reason) : undefined;
    },
    errorHandler() {
      return options.onError;
    },
  };
}

function streamHooks(options, handler, codec) {
  return {
    connect(socket) {
      return options.onConnect ? options.onConnect(socket) : undefined;
    },
    open(socket) {
      // The handler owns the connection for its whole life, so it runs beside
      // the message flow instead of pausing it.
      // An exception goes to onError (its reply is sent) or closes with
      // 1011; either way the handler is over, so the connection closes.
      const ep = socket._endpoint;
      Promise.resolve()
        .then(() => handler(socket))
        .then(undefined, (err) => ep.fail(socket, err))
        .then(() => {
          if (socket.isOpen) socket.close(1000, '');
        });
      return undefined;
    },
    message(socket, payload, value) {
      socket._push(codec === CODEC.raw ? new WebSocketMessage(payload) : value);
      return undefined;
    },
    close(socket, code, reason) {
      return options.onDisconnect ? options.onDisconnect(socket, code, reason) : undefined;
    },
    errorHandler() {
      return options.onError;
    },
  };
}

function classHooks(Cls, receivers) {
  return {
    connect(socket) {
      const inst = new Cls();
      inst[SOCKET] = socket;
      socket[INSTANCE] = inst;
      return typeof inst.onConnect === 'function' ? inst.onConnect(socket.request) : undefined;
    },
    message(socket, payload, value, handler) {
      const inst = socket[INSTANCE];
      const name = handler >= 0 ? receivers[handler] : 'receive';
      const r = inst[name](value);
      if (isThenable(r)) return r.then((v) => socket._endpoint.reply(socket, v));
      socket._endpoint.reply(socket, r);
      return undefined;
    },
    close(socket, code, reason) {
      const inst = socket[INSTANCE];
      return inst && typeof inst.onDisconnect === 'function' ? inst.onDisconnect(code, reason) : undefined;
    },
    errorHandler(socket) {
      const inst = socket[INSTANCE];
      return inst && typeof inst.onError === 'function' ? inst.onError.bind(inst) : undefined;
    },
  };
}

// ---- App ---------------------------------------------------------------------

/** PEM text from a string, a Buffer/Uint8Array, or an array of them (as https takes). */
function pemText(v, what) {
  if (Array.isArray(v)) return v.map((x) => pemText(x, what)).join('\n');
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  throw new TypeError(`tls.${what} must be PEM text: a string or a Buffer`);
}

/** The `tls` option as the native [serverName, cert, key, passphrase] rows. */
function tlsCerts(tls) {
  if (tls === null || typeof tls !== 'object') throw new TypeError('tls must be { cert, key }');
  const row = (name, t, where) => {
    if (t == null || t.cert == null || t.key == null) {
      throw new TypeError(`${where} needs cert and key (PEM strings or Buffers)`);
    }
    if (t.passphrase != null && typeof t.passphrase !== 'string') {
      throw new TypeError(`${where}.passphrase must be a string`);
    }
    return [name, pemText(t.cert, 'cert'), pemText(t.key, 'key'), t.passphrase ?? null];
  };
  for (const k of Object.keys(tls)) {
    if (!['cert', 'key', 'passphrase', 'sni', 'ca'].includes(k)) {
      throw new TypeError(`unknown tls option: ${k}`);
    }
  }
  const rows = [row(null, tls, 'tls')];
  for (const [name, t] of Object.entries(tls.sni ?? {})) rows.push(row(name, t, `tls.sni[${name}]`));
  return rows;
}

/** The `tls.ca` option (client certificates must chain to it) as PEM text, or null. */
function tlsCa(tls) {
  return tls.ca == null ? null : pemText(tls.ca, 'ca');
}

class App extends EventEmitter {
  /**
   * @param {object} [options] server options (maxConnections, maxHandshakeSize,
   *   handshakeTimeout, maxBufferedBytes, maxTopicsPerConn (topics per connection, 0: 1024),
   *   unref, broker: a 'redis://...' URL, metricsPath /
   *   healthPath: plain GETs answered on the WebSocket port, metricsPort: both on a port of their
   *   own; docs/operations.md; client limits, docs/security.md: maxConnectionsPerAddress,
   *   handshakeRate, handshakeBurst, trustedProxies) and endpoint defaults (maxPayload,
   *   idleTimeout, messageRate, messageBurst, byteRate, byteBurst, rateLimitAction,
   *   pongTimeout, maxBackpressure, maxQueuedMessages, sendTimeout, maxMessageFragments,
   *   messageTimeout, compression ('shared', 'dedicated' or 'off'), compressionThreshold,
   *   compressionWindowBits,
   *   allowedOrigins, subprotocols,
   *   invalidMessages), and tls: { cert, key, passphrase, sni, ca } to serve wss://
   */
  constructor(options = {}) {
    super();
    if (options.tls !== undefined) { // a bad tls option fails here
      tlsCerts(options.tls);
      tlsCa(options.tls);
    }
    this.options = { ...options };
    try {
      this._server = new native.Server({
        maxConnections: options.maxConnections,
        maxHandshakeSize: options.maxHandshakeSize,
        handshakeTimeout: options.handshakeTimeout,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress,
        handshakeRate: options.handshakeRate,
        handshakeBurst: options.handshakeBurst,
        trustedProxies: options.trustedProxies,
        maxBufferedBytes: options.maxBufferedBytes,
        maxTopicsPerConn: options.maxTopicsPerConn,
      });
    } catch (err) {
      throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
    }
    if (options.broker !== undefined) {
      try {
        this._server.useRedis(String(options.broker), (state, message) => this._brokerState(state, message));
      } catch (err) {
        throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
      }
    }
    this._broker = options.broker !== undefined;
    if (options.metricsPath || options.healthPath) {
      try {
        this._server.setMetrics(options.metricsPath || null, options.healthPath || null);
      } catch (err) {
        throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
      }
    }
    // 'log' events ({ level, event, remote, path, code, ... }): the core builds
    // them only while someone listens.
    this.on('newListener', (name) => {
      if (name === 'log' && this.listenerCount('log') === 0 && this._state !== 'closed') {
        this._server.setLog((ev) => this.emit('log', ev), 0);
      }
    });
    this.on('removeListener', (name) => {
      if (name === 'log' && this.listenerCount('log') === 0 && this._state !== 'closed') {
        this._server.setLog(null, 0);
      }
    });
    this.metricsPort = undefined;
    this._unref = Boolean(options.unref);
    this._endpoints = [];
    this._state = 'idle'; // 'listening', 'closing', 'closed'
    this._closing = null;
    this.port = undefined;
    this.host = undefined;
  }

  _nativeOptions(options, codec, schemas, responseSchema) {
    const o = { ...pick(this.options), ...pick(options) };
    const policy = o.invalidMessages ?? 'reply';
    if (!(policy in POLICY)) throw new TypeError("invalidMessages must be 'reply', 'close' or 'ignore'");
    const action = o.rateLimitAction ?? 'drop';
    if (!Object.hasOwn(RATE_ACTION, action)) throw new TypeError("rateLimitAction must be 'drop' or 'close'");
    return {
      codec,
      messageSchemas: schemas,
      responseSchema,
      invalidPolicy: POLICY[policy],
      maxPayload: o.maxPayload,
      maxBackpressure: o.maxBackpressure,
      maxQueuedMessages: o.maxQueuedMessages,
      idleTimeout: o.idleTimeout === 0 || o.idleTimeout === Infinity ? 4294967295 : o.idleTimeout,
      pongTimeout: o.pongTimeout,
      sendTimeout: o.sendTimeout === 0 || o.sendTimeout === Infinity ? 4294967295 : o.sendTimeout,
      maxMessageFragments: o.maxMessageFragments,
      compression: compressionMode(o.compression),
      compressionThreshold: o.compressionThreshold,
      compressionWindowBits: o.compressionWindowBits,
      messageTimeout: o.messageTimeout === 0 || o.messageTimeout === Infinity ? 4294967295 : o.messageTimeout,
      schemaFlags: o.formatAssert ? 1 : 0,
      subprotocols: o.subprotocols,
      allowedOrigins: o.allowedOrigins,
      messageRate: o.messageRate,
      messageBurst: o.messageBurst,
      byteRate: o.byteRate,
      byteBurst: o.byteBurst,
      rateLimitAction: RATE_ACTION[action],
    };
  }

  _add(path, codec, hooks, nativeOptions) {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new TypeError('a path starts with /');
    const ep = new Endpoint(this, path, codec, hooks);
    ep.checked = nativeOptions.responseSchema !== undefined;
    try {
      this._server.addEndpoint(path, nativeOptions, ep.nativeHandlers());
    } catch (err) {
      throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
    }
    this._endpoints.push(ep);
    return this;
  }

  /**
   * Register a WebSocket route.
   *  - websocket(path, (request) => WebSocketResponse [, options])  callback style
   *  - websocket(path, { messageSchema, responseSchema, ... }, (message, ctx) => reply)  typed
   *  - websocket(path, { stream: true, ... }, async (socket) => { ... })  stream style
   */
  websocket(path, a, b) {
    if (typeof a === 'function') {
      const options = b ?? {};
      return this._add(path, CODEC.raw, callbackHooks(a), this._nativeOptions(options, CODEC.raw, [], undefined));
    }
    if (!a || typeof a !== 'object' || typeof b !== 'function') {
      throw new TypeError('websocket(path, handler) or websocket(path, options, handler)');
    }
    const options = a;
    const hasSchema = options.messageSchema !== undefined || options.responseSchema !== undefined;
    const codec = options.stream && options.serializer === undefined && !hasSchema
      ? CODEC.raw : codecOf(options.serializer);
    if (codec === CODEC.raw && hasSchema) throw new TypeError('schemas need the json or msgpack serializer');
    const schemas = options.messageSchema !== undefined ? [schemaText(options.messageSchema, 'messageSchema')] : [];
    const nativeOptions = this._nativeOptions(options, codec, schemas,
      schemaText(options.responseSchema, 'responseSchema'));
    const hooks = options.stream ? streamHooks(options, b, codec) : typedHooks(options, b, codec);
    return this._add(path, codec, hooks, nativeOptions);
  }

  /** Register a WebSocketEndpoint subclass (its static path, or options.path). */
  include(Cls, options = {}) {
    if (typeof Cls !== 'function' || !(Cls.prototype instanceof WebSocketEndpoint)) {
      throw new TypeError('include() takes a WebSocketEndpoint subclass');
    }
    const path = options.path ?? Cls.path;
    const codec = codecOf(Cls.serializer);
    if (codec === CODEC.raw) throw new TypeError("class endpoints use the 'json' or 'msgpack' serializer");
    const messages = Cls.messages ?? null;
    const receivers = [];
    const schemas = [];
    if (messages) {
      for (const [key, schema] of Object.entries(messages)) {
        const name = receiverName(key);
        if (typeof Cls.prototype[name] !== 'function') {
          throw new TypeError(`${Cls.name} declares message '${key}' but has no ${name}() method`);
        }
        receivers.push(name);
        schemas.push(schemaText(schema, `messages.${key}`));
      }
    } else if (typeof Cls.prototype.receive !== 'function') {
      throw new TypeError(`${Cls.name} needs static messages and receiveX() methods, or a receive() method`);
    }
    const nativeOptions = this._nativeOptions({ ...(Cls.options ?? {}), ...options }, codec, schemas,
      schemaText(Cls.responseSchema, 'responseSchema'));
    return this._add(path, codec, classHooks(Cls, receivers), nativeOptions);
  }

  /** A broker state change: the 'broker' event ({ state, message }), else one stderr line. */
  _brokerState(state, message) {
    const name = ['connecting', 'up', 'down'][state] ?? 'connecting';
    if (this.listenerCount('broker') > 0) this.emit('broker', { state: name, message });
    else console.error(`wirecore: broker: ${message}`);
  }

  /**
   * Every counter as an object (docs/operations.md): connections, messages
   * and bytes in and out, handshakes, drops, topics, broker, per endpoint.
   * null once closed.
   */
  stats() {
    return this._state === 'closed' ? null : JSON.parse(this._server.metrics(1));
  }

  /** The Prometheus text /metrics answers; null once closed. */
  metrics() {
    return this._state === 'closed' ? null : this._server.metrics(0);
  }

  /** The broker's counters, or null without a broker. */
  brokerStats() {
    return this._state === 'closed' ? null : this._server.brokerStats();
  }

  /**
   * Start listening; resolves with { host, port } once the socket is bound.
   * workers > 1 (node:cluster): the primary forks that many workers, each
   * running this same script with its own App, and supervises them (see
   * docs/scaling.md); there it resolves with { host, port, workers } once
   * every worker listens.
   */
  async listen(options = {}) {
    if (typeof options === 'number') options = { port: options };
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    if ((options.workers ?? 1) > 1 && workers.isPrimary()) {
      if (port === 0) throw new TypeError('workers need a fixed port (each worker would pick its own)');
      await workers.supervise(options.workers, options);
      return { host, port, workers: options.workers };
    }
    if (this._state === 'closing' || this._state === 'closed') {
      throw new errors.WirecoreError('the app is closed', { code: 'ESTATE', errno: -7 });
    }
    try {
      this.port = this.options.tls
        ? this._server.listen(host, port, tlsCerts(this.options.tls), tlsCa(this.options.tls))
        : this._server.listen(host, port);
    } catch (err) {
      throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
    }
    this.host = host;
    this._state = 'listening';
    if (this.options.metricsPort !== undefined && this.options.metricsPort !== null) {
      try {
        this.metricsPort = this._server.listenMetrics(host, this.options.metricsPort);
      } catch (err) {
        await this.close();
        throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
      }
    }
    if (this._unref) this._server.unref();
    workers.listening(this); // in a cluster worker: tell the primary, drain on its word
    return { host, port: this.port };
  }

  /**
   * Stop accepting without dropping anything (connections waiting in the
   * backlog are served), finish the open connections (at most `timeout` ms),
   * then close as close() does. What a worker does in a rolling replace.
   */
  drain({ timeout = 30000 } = {}) {
    if (this._closing) return this._closing;
    if (this._state !== 'listening') return this.close();
    this._state = 'closing';
    this._closing = new Promise((resolve) => {
      this._server.drain(timeout, () => {
        this._state = 'closed';
        setImmediate(() => this._server.destroy());
        resolve();
      });
    });
    return this._closing;
  }

  /** The URL of the listening server for a path: ws://host:port/path. */
  url(path = '/') {
    if (this.port === undefined) throw new Error('the app is not listening');
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.options.tls ? 'wss' : 'ws'}://${host}:${this.port}${path}`;
  }

  /**
   * Load a new certificate and key (same shape as the `tls` option) without
   * a restart: new connections use it, open ones keep theirs. Throws
   * ConfigError and keeps the old one when it does not load.
   */
  reloadTls(tls) {
    try {
      this._server.reloadTls(tlsCerts(tls), tlsCa(tls));
    } catch (err) {
      throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
    }
    this.options.tls = tls;
  }

  /**
   * Graceful shutdown: stop accepting, close every connection with 1001,
   * wait for them (at most `timeout` ms), then release the loop so the
   * process can exit. Resolves when everything is closed.
   */
  close({ timeout = 5000 } = {}) {
    if (this._closing) return this._closing;
    if (this._state !== 'listening' && !this._broker) {
      this._state = 'closed';
      this._server.destroy();
      this._closing = Promise.resolve();
      return this._closing;
    }
    this._state = 'closing';
    this._closing = new Promise((resolve) => {
      this._server.shutdown(timeout, () => {
        this._state = 'closed';
        // Free the core server once its shutdown callback has returned.
        setImmediate(() => this._server.destroy());
        resolve();
      });
    });
    return this._closing;
  }

  /** Let the process exit while the app listens (as net.Server#unref). */
  unref() {
    this._unref = true;
    if (this._state === 'listening') this._server.unref();
    return this;
  }

  ref() {
    this._unref = false;
    if (this._state === 'listening') this._server.ref();
    return this;
  }

  /** Open connections (handshaking or open). */
  get connectionCount() {
    return this._state === 'closed' ? 0 : this._server.connectionCount();
  }

  /**
   * Send `message` to every connection subscribed to `topic` but `exclude`
   * (a Socket or a class endpoint). A string goes as a text frame, a
   * Buffer / Uint8Array as a binary frame; any other value is encoded once
   * per codec in use, each subscriber getting its endpoint's encoding.
   * Returns the number of connections it was queued for.
   */
  publish(topic, message, { exclude } = {}) {
    if (exclude instanceof WebSocketEndpoint) exclude = exclude[SOCKET];
    if (exclude !== undefined && exclude !== null && !(exclude instanceof Socket)) {
      throw new TypeError('exclude must be a socket or a class endpoint');
    }
    return topics.publish(this._server, topic, message, exclude ? exclude._conn : null);
  }

  /**
   * Keep the last `history` publications of the topic `pattern`, or of every topic
   * starting with it when it ends in '*' ('room:*'), each for at most `ttl` seconds
   * (undefined: no time limit; a topic's history is also freed after ttl without
   * publications). Publications on these topics reach subscribers as
   * { topic, offset, data }, and socket.subscribe(topic, { since: offset }) recovers
   * what a client missed (docs/scaling.md). ConfigError for a bad pattern, history
   * outside 1..1,000,000, a ttl that is not positive, or a pattern set twice.
   */
  topic(pattern, { history, ttl } = {}) {
    topics.topicHistory(this._server, pattern, history, ttl);
    return this;
  }

  /** How many connections are subscribed to `topic`. */
  subscriberCount(topic) {
    return topics.countOf(this._server.subscriberCount(topics.checkTopic(topic)));
  }

  /** A client for tests: real sockets to this app (listening on 127.0.0.1:0 if needed). */
  testClient(options) {
    const { TestClient } = require('./testclient');
    return new TestClient(this, options);
  }

  _report(err, socket, endpoint) {
    if (this.listenerCount('error') > 0) {
      this.emit('error', err, socket);
    } else {
      console.error(`wirecore: unhandled error in the handler of ${endpoint.path}:`, err);
    }
  }
}

function pick(o) {
  const out = {};
  for (const k of ENDPOINT_OPTIONS) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

module.exports = { App, WebSocketResponse, WebSocketEndpoint, receiverName };
