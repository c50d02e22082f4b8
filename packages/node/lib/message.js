'use strict';
// WebSocketMessage: one message as received. Its payload is a JS string or a
// Buffer copied out of the core, so it stays valid after the handler returns.

const TEXT = 1;
const BINARY = 2;

class WebSocketMessage {
  /**
   * @param {string | Uint8Array} data text (a string) or binary data
   */
  constructor(data) {
    if (typeof data === 'string') {
      this.kind = 'text';
      this.data = data;
    } else if (data instanceof Uint8Array) {
      this.kind = 'binary';
      this.data = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    } else if (data instanceof ArrayBuffer) {
      this.kind = 'binary';
      this.data = Buffer.from(data);
    } else {
      throw new TypeError('WebSocketMessage takes a string or a Uint8Array');
    }
  }

  static text(s) { return new WebSocketMessage(String(s)); }
  static binary(b) { return new WebSocketMessage(b); }
  static json(v) { return new WebSocketMessage(JSON.stringify(v)); }

  isText() { return this.kind === 'text'; }
  isBinary() { return this.kind === 'binary'; }
  /** The payload as text (binary payloads are decoded as UTF-8). */
  asText() { return this.kind === 'text' ? this.data : this.data.toString('utf8'); }
  /** The payload as a Buffer (text is encoded as UTF-8). */
  asBinary() { return this.kind === 'binary' ? this.data : Buffer.from(this.data, 'utf8'); }
  /** The payload parsed as JSON; throws a SyntaxError when it is not JSON. */
  asJson() { return JSON.parse(this.asText()); }
  get length() { return this.kind === 'text' ? Buffer.byteLength(this.data) : this.data.length; }
  toString() { return this.asText(); }
}

module.exports = { WebSocketMessage, TEXT, BINARY };
