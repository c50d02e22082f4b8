'use strict';
// Error classes. Core failures arrive as { code, errno, message, path,
// keyword, schemaPath, offset } and become one of these.

class WirecoreError extends Error {
  constructor(message, info = {}) {
    super(message);
    this.name = new.target.name;
    this.code = info.code ?? 'EHANDLER';
    this.errno = info.errno ?? -24;
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

/** The connection is closed (or closing): nothing can be sent any more. */
class ConnectionClosedError extends WirecoreError {
  constructor(message = 'connection is closed', info = {}) {
    super(message, { code: 'ECLOSED', errno: -6, ...info });
    this.closeCode = info.closeCode;
    this.reason = info.reason;
  }
}

/** The peer broke the WebSocket protocol (bad frames, invalid UTF-8, too big). */
class ProtocolError extends WirecoreError {}

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

const BY_CODE = {
  EVALIDATION: ValidationError,
  EUNKNOWN_MESSAGE: UnknownMessageError,
  EDESERIALIZE: DeserializationError,
  ECODEC: DeserializationError,
  EDEPTH: DeserializationError,
  ESERIALIZE: SerializationError,
  ECLOSED: ConnectionClosedError,
  EPROTOCOL: ProtocolError,
  EUTF8: ProtocolError,
  ETOOBIG: ProtocolError,
};

/** An error object for a core failure description. */
function fromInfo(info) {
  const Cls = BY_CODE[info.code] ?? WirecoreError;
  return new Cls(info.message, info);
}

/** Core errors a user error handler may answer (the rest close the connection anyway). */
const MESSAGE_ERRORS = new Set(['EDESERIALIZE', 'ECODEC', 'EDEPTH', 'EVALIDATION', 'EUNKNOWN_MESSAGE']);

module.exports = {
  WirecoreError, ValidationError, UnknownMessageError, DeserializationError,
  SerializationError, ConnectionClosedError, ProtocolError, Reject, fromInfo, MESSAGE_ERRORS,
};
