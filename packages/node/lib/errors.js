'use strict';
// Error classes: one per core error category, with the same names as in the
// Python and Ruby packages (docs/c-api.md has the table). Which core code
// belongs to which class is not written here: it comes from the core's own
// list (WIRE_ERRNO_MAP) through native.errors(). Core failures arrive as
// { code, errno, category, message, path, keyword, schemaPath, offset }.
const { native } = require('./native');

class WirecoreError extends Error {
  constructor(message, info = {}) {
    super(message);
    this.name = new.target.name;
    this.code = info.code ?? 'EHANDLER';
    this.errno = info.errno ?? -24;
  }
}

/** The runtime itself failed (out of memory, an event loop error). */
class InternalError extends WirecoreError {}

/** A bad argument, option, schema, route pattern or listen address. */
class ConfigError extends WirecoreError {}

/** The peer broke RFC 6455 (bad frames, invalid UTF-8 in a text message). */
class ProtocolError extends WirecoreError {}

/** A message was larger than maxPayload (the connection closes with 1009). */
class MessageTooBigError extends WirecoreError {}

/** A message could not be decoded (bad JSON or MessagePack, wrong frame kind, too deep). */
class DeserializationError extends WirecoreError {
  constructor(message, info = {}) {
    super(message, { code: 'EDESERIALIZE', errno: -14, ...info });
    this.offset = info.offset ?? 0;
  }
}

/** A value could not be encoded (a function, a cycle, a BigInt out of range, NaN as JSON). */
class SerializationError extends WirecoreError {
  constructor(message, info = {}) {
    super(message, { code: 'ESERIALIZE', errno: -15, ...info });
  }
}

/** A message (or a response) does not match its JSON Schema. */
class ValidationError extends WirecoreError {
  constructor(message, info = {}) {
    super(message, { code: 'EVALIDATION', errno: -16, ...info });
    this.path = info.path ?? '';
    this.keyword = info.keyword ?? '';
    this.schemaPath = info.schemaPath ?? '';
  }
}

/** No message schema of the endpoint matches the message. */
class UnknownMessageError extends WirecoreError {
  constructor(message, info = {}) {
    super(message, { code: 'EUNKNOWN_MESSAGE', errno: -17, ...info });
  }
}

/** The connection is closed (or closing): nothing can be sent any more. */
class ConnectionClosedError extends WirecoreError {
  constructor(message = 'connection is closed', info = {}) {
    super(message, { code: 'ECLOSED', errno: -6, ...info });
    this.closeCode = info.closeCode;
    this.reason = info.reason;
  }
}

/** A send found the connection's queue over maxBackpressure (it closes with 1008). */
class BackpressureError extends WirecoreError {
  constructor(message = 'send buffer limit exceeded', info = {}) {
    super(message, { code: 'EBACKPRESSURE', errno: -8, ...info });
  }
}

/** An application handler failed. */
class HandlerError extends WirecoreError {}

/**
 * Refuse a connection before the upgrade: throw (or return) it from onConnect.
 * The client gets the HTTP status and the socket closes.
 */
class Reject extends Error {
  constructor(status = 403, message) {
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError('Reject status must be an HTTP status 400..599');
    }
    super(message ?? `connection rejected with ${status}`);
    this.name = 'Reject';
    this.status = status;
  }
}

const CLASSES = {
  InternalError, ConfigError, ProtocolError, MessageTooBigError, DeserializationError,
  SerializationError, ValidationError, UnknownMessageError, ConnectionClosedError,
  BackpressureError, HandlerError,
};

/** Every core error code: [{ name, errno, category, className }], from the core's list. */
const CODES = native.errors();

/** Core error name (e.g. 'ETOOBIG') -> its category's class. */
const BY_CODE = Object.create(null);
for (const row of CODES) {
  const Cls = CLASSES[row.className];
  if (!Cls) throw new Error(`wirecore: no error class ${row.className} for ${row.name}`);
  BY_CODE[row.name] = Cls;
}

/** An error object for a core failure description. */
function fromInfo(info) {
  // conn.fail(err) / conn.invalid(err) hand onError the application's error itself.
  if (info instanceof WirecoreError || (info instanceof Error && typeof info.errno !== 'number')) {
    return info;
  }
  const Cls = BY_CODE[info.code] ?? WirecoreError;
  return new Cls(info.message, info);
}

/** Core errors a user error handler may answer (the rest close the connection anyway). */
const MESSAGE_ERRORS = new Set(['EDESERIALIZE', 'ECODEC', 'EDEPTH', 'EVALIDATION', 'EUNKNOWN_MESSAGE']);

module.exports = {
  WirecoreError, ...CLASSES, Reject, fromInfo, MESSAGE_ERRORS, CODES,
};
