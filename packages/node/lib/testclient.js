'use strict';
// The test client: a small RFC 6455 client over node:net (no dependencies),
// talking to the app through a real socket on the loopback interface.
const net = require('node:net');
const crypto = require('node:crypto');
const { native } = require('./native');
const { WebSocketMessage } = require('./message');
const { ConnectionClosedError } = require('./errors');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

class HandshakeError extends Error {
  constructor(status, body, headers) {
    super(`handshake refused with HTTP ${status}`);
    this.name = 'HandshakeError';
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

function frame(opcode, payload, fin = true) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + 4 + len);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = crypto.randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/** One client connection. receive*() resolve in arrival order. */
class TestWebSocket {
  constructor(socket, protocol, rest) {
    this._socket = socket;
    this.protocol = protocol;
    this._buf = rest;
    this._frag = null; // { opcode, parts }
    this._messages = [];
    this._waiters = [];
    this.closeCode = undefined;
    this.closeReason = undefined;
    this._closeSent = false;
    this._ended = false;
    this.closed = new Promise((resolve) => { this._resolveClosed = resolve; });
    socket.on('data', (d) => this._data(d));
    socket.on('close', () => this._end());
    socket.on('error', () => {});
    if (rest.length) setImmediate(() => this._data(Buffer.alloc(0)));
  }

  _data(chunk) {
    this._buf = this._buf.length ? Buffer.concat([this._buf, chunk]) : chunk;
    for (;;) {
      const b = this._buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b[1] & 0x80) off += 4; // servers do not mask, but tolerate it
      if (b.length < off + len) return;
      const payload = b.subarray(off, off + len);
      this._buf = b.subarray(off + len);
      this._frame(b[0] & 0x80, b[0] & 0x0f, Buffer.from(payload));
    }
  }

  _frame(fin, opcode, payload) {
    if (opcode === 0x8) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.closeReason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
      if (!this._closeSent) {
        this._closeSent = true;
        this._socket.write(frame(0x8, payload.subarray(0, 2)));
      }
      this._socket.end();
      return;
    }
    if (opcode === 0x9) {
      this._socket.write(frame(0xa, payload));
      return;
    }
    if (opcode === 0xa) return;
    if (opcode !== 0) this._frag = { opcode, parts: [payload] };
    else if (this._frag) this._frag.parts.push(payload);
    if (!fin || !this._frag) return;
    const { opcode: op, parts } = this._frag;
    this._frag = null;
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this._deliver(new WebSocketMessage(op === 0x1 ? data.toString('utf8') : data));
  }

  _deliver(msg) {
    const w = this._waiters.shift();
    if (w) w.resolve(msg);
    else this._messages.push(msg);
  }

  _end() {
    if (this._ended) return;
    this._ended = true;
    if (this.closeCode === undefined) {
      this.closeCode = 1006;
      this.closeReason = '';
    }
    for (const w of this._waiters.splice(0)) w.reject(this._closedError());
    this._resolveClosed({ code: this.closeCode, reason: this.closeReason });
  }

  _closedError() {
    return new ConnectionClosedError(`connection closed with ${this.closeCode}`,
      { closeCode: this.closeCode, reason: this.closeReason });
  }

  /** Send a string as a text frame, bytes as a binary frame. */
  send(data) {
    if (typeof data === 'string') this.sendText(data);
    else if (data instanceof WebSocketMessage) this.send(data.data);
    else this.sendBytes(data);
  }

  sendText(s) { this._write(frame(0x1, Buffer.from(String(s), 'utf8'))); }
  sendBytes(b) { this._write(frame(0x2, Buffer.from(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength))); }
  sendJson(value) { this.sendText(JSON.stringify(value)); }
  sendMsgpack(value) { this.sendBytes(native.encode(value, 'msgpack')); }
  /** Raw frame bytes, for protocol tests (the caller masks them). */
  sendRaw(bytes) { this._write(Buffer.from(bytes)); }
  /** A message in several frames: the first opcode, then continuations. */
  sendFragments(parts, binary = false) {
    parts.forEach((p, i) => {
      const op = i === 0 ? (binary ? 0x2 : 0x1) : 0x0;
      this._write(frame(op, Buffer.from(p), i === parts.length - 1));
    });
  }
  ping(data = '') { this._write(frame(0x9, Buffer.from(data))); }

  _write(buf) {
    if (this._ended || this._closeSent) throw this._closedError();
    this._socket.write(buf);
  }

  /** The next message (a WebSocketMessage); rejects on close or after `timeout` ms. */
  receive(timeout = 5000) {
    if (this._messages.length) return Promise.resolve(this._messages.shift());
    if (this._ended) return Promise.reject(this._closedError());
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      const t = setTimeout(() => {
        const i = this._waiters.indexOf(w);
        if (i >= 0) this._waiters.splice(i, 1);
        reject(new Error(`no message within ${timeout} ms`));
      }, timeout);
      w.resolve = (m) => { clearTimeout(t); resolve(m); };
      w.reject = (e) => { clearTimeout(t); reject(e); };
      this._waiters.push(w);
    });
  }

  async receiveText(timeout) { return (await this.receive(timeout)).asText(); }
  async receiveBytes(timeout) { return (await this.receive(timeout)).asBinary(); }
  async receiveJson(timeout) { return (await this.receive(timeout)).asJson(); }
  async receiveMsgpack(timeout) { return native.decode((await this.receive(timeout)).asBinary(), 'msgpack'); }

  /** Start the close handshake; resolves with { code, reason } of the server's answer. */
  async close(code = 1000, reason = '', timeout = 5000) {
    if (!this._ended && !this._closeSent) {
      const r = Buffer.from(reason, 'utf8');
      const payload = Buffer.alloc(2 + r.length);
      payload.writeUInt16BE(code, 0);
      r.copy(payload, 2);
      this._closeSent = true;
      this._socket.write(frame(0x8, payload));
    }
    return this.waitClosed(timeout);
  }

  /** Resolves with { code, reason } once the connection has ended. */
  waitClosed(timeout = 5000) {
    let t;
    const limit = new Promise((_, reject) => {
      t = setTimeout(() => {
        this._socket.destroy();
        reject(new Error(`not closed within ${timeout} ms`));
      }, timeout);
    });
    return Promise.race([this.closed, limit]).finally(() => clearTimeout(t));
  }

  /** Drop the TCP connection without a close handshake. */
  terminate() { this._socket.destroy(); }
}

class TestClient {
  constructor(app, options = {}) {
    this.app = app;
    this.options = options;
    this._sockets = new Set();
  }

  /**
   * Open a WebSocket to `path` (with an optional query string). Options:
   * headers, protocols (subprotocols offered), origin, timeout (ms).
   * Rejects with a HandshakeError (.status, .body) when the server refuses.
   */
  async websocket(path, options = {}) {
    if (this.app.port === undefined) await this.app.listen({ host: '127.0.0.1', port: 0 });
    const host = this.app.host === '0.0.0.0' || this.app.host === '::' ? '127.0.0.1' : this.app.host;
    const socket = net.connect({ host, port: this.app.port });
    socket.setNoDelay(true);
    this._sockets.add(socket);
    socket.on('close', () => this._sockets.delete(socket));
    const key = crypto.randomBytes(16).toString('base64');
    const headers = {
      Host: `${host}:${this.app.port}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
      ...(options.protocols ? { 'Sec-WebSocket-Protocol': [].concat(options.protocols).join(', ') } : {}),
      ...(options.origin ? { Origin: options.origin } : {}),
      ...(options.headers ?? {}),
    };
    const head = `GET ${path} HTTP/1.1\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('handshake timed out'));
      }, options.timeout ?? 5000);
      const fail = (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const got = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          got[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        if (status !== 101) {
          // Read the body until the server closes.
          socket.removeListener('data', onData);
          let body = buf.subarray(end + 4);
          socket.on('data', (m) => { body = Buffer.concat([body, m]); });
          socket.on('close', () => fail(new HandshakeError(status, body.toString('utf8'), got)));
          socket.on('error', () => {});
          return;
        }
        const expect = crypto.createHash('sha1').update(key + GUID).digest('base64');
        if (got['sec-websocket-accept'] !== expect) {
          fail(new Error('bad Sec-WebSocket-Accept'));
          return;
        }
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', fail);
        resolve(new TestWebSocket(socket, got['sec-websocket-protocol'], buf.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.on('error', fail);
      socket.write(head);
    });
  }

  /** Drop every connection this client opened. */
  close() {
    for (const s of this._sockets) s.destroy();
    this._sockets.clear();
  }
}

module.exports = { TestClient, TestWebSocket, HandshakeError };
