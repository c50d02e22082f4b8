// ESM entry point: the same objects as the CommonJS entry (one addon load).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const wirecore = require('./index.js');

export const {
  App, WebSocketResponse, WebSocketMessage, WebSocketEndpoint, Socket, Reject,
  WirecoreError, ValidationError, UnknownMessageError, DeserializationError,
  SerializationError, ConnectionClosedError, ProtocolError, InternalError, ConfigError,
  MessageTooBigError, BackpressureError, HandlerError,
  TestClient, TestWebSocket, HandshakeError, encode, decode, version,
} = wirecore;
export default wirecore;
