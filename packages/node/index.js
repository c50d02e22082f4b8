'use strict';
// wirecore: a WebSocket server runtime whose C core runs on Node's own event
// loop. This file is the CommonJS entry point; index.mjs re-exports it.
const { native } = require('./lib/native');
const { App, WebSocketResponse, WebSocketEndpoint } = require('./lib/app');
const { WebSocketMessage } = require('./lib/message');
const { Socket } = require('./lib/socket');
const { TestClient, TestWebSocket, HandshakeError } = require('./lib/testclient');
const errors = require('./lib/errors');

/** Encode a value as JSON text bytes or MessagePack with the core's codecs. */
function encode(value, serializer = 'json') {
  try {
    return native.encode(value, serializer);
  } catch (err) {
    throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
  }
}

/** Decode JSON or MessagePack bytes with the core's codecs. */
function decode(bytes, serializer = 'json') {
  try {
    return native.decode(bytes, serializer);
  } catch (err) {
    throw typeof err.errno === 'number' ? errors.fromInfo(err) : err;
  }
}

module.exports = {
  App,
  WebSocketResponse,
  WebSocketMessage,
  WebSocketEndpoint,
  Socket,
  Reject: errors.Reject,
  WirecoreError: errors.WirecoreError,
  ValidationError: errors.ValidationError,
  UnknownMessageError: errors.UnknownMessageError,
  DeserializationError: errors.DeserializationError,
  SerializationError: errors.SerializationError,
  ConnectionClosedError: errors.ConnectionClosedError,
  ProtocolError: errors.ProtocolError,
  InternalError: errors.InternalError,
  ConfigError: errors.ConfigError,
  MessageTooBigError: errors.MessageTooBigError,
  BackpressureError: errors.BackpressureError,
  HandlerError: errors.HandlerError,
  TestClient,
  TestWebSocket,
  HandshakeError,
  encode,
  decode,
  version: native.version(),
};
