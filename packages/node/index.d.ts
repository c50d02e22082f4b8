// Type definitions for wirecore (CommonJS and ESM entry points alike).

/// <reference types="node" />
import { EventEmitter } from 'node:events';

/** A JSON Schema (2020-12) as a plain object, a boolean schema or JSON text. */
export type JsonSchema = Record<string, unknown> | boolean | string;

/** Values the JSON and MessagePack codecs carry (Buffers only with MessagePack). */
export type WireValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | WireValue[]
  | { [key: string]: WireValue };

/** The handshake request, copied when the connection arrives. */
export interface Request {
  /** Decoded path, without the query string. */
  path: string;
  /** The raw request target (path and query as sent). */
  target: string;
  /** Path parameters of the route, e.g. { room: 'lobby' } for /chat/{room}. */
  params: Record<string, string>;
  /** Query parameters (the first value of a repeated key). */
  query: Record<string, string>;
  /** Every query parameter in order, repeats kept. */
  queryList: Array<[string, string]>;
  /** Headers with lower-cased names; repeats joined with ", ". */
  headers: Record<string, string>;
  /** The peer's address; behind a proxy listed in trustedProxies, the client it forwards. */
  remoteAddress: string;
  remotePort: number;
  /** The negotiated subprotocol, or null. */
  subprotocol: string | null;
}

/** A received message. Its payload is a copy: it stays valid after the handler returns. */
export class WebSocketMessage {
  constructor(data: string | Uint8Array | ArrayBuffer);
  static text(s: string): WebSocketMessage;
  static binary(b: Uint8Array | ArrayBuffer): WebSocketMessage;
  static json(value: unknown): WebSocketMessage;
  readonly kind: 'text' | 'binary';
  readonly data: string | Buffer;
  readonly length: number;
  isText(): boolean;
  isBinary(): boolean;
  asText(): string;
  asBinary(): Buffer;
  asJson<T = unknown>(): T;
}

/** What a handler may return to answer a message (undefined/null send nothing). */
export type Reply<R> = R | undefined | null | void;

/** One connection, as handlers see it (`ctx` of typed handlers, `socket` of streams). */
export class Socket<In = WireValue, Out = WireValue> implements AsyncIterable<In> {
  readonly request: Request;
  readonly id: number;
  readonly state: 'connecting' | 'open' | 'closed';
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  readonly headers: Record<string, string>;
  readonly path: string;
  readonly subprotocol: string | null;
  readonly remoteAddress: string;
  readonly bufferedAmount: number;
  readonly isOpen: boolean;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  /** Resolves once the connection has ended. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Aborted when the connection ends (reason: a ConnectionClosedError): cancels a handler's pending work. */
  readonly signal: AbortSignal;
  /**
   * Send a value: encoded with the endpoint's serializer (checked against its
   * response schema) on JSON/MessagePack endpoints; on raw endpoints strings
   * go as text, bytes as binary, anything else as JSON text.
   * Sends made before the upgrade completes are queued until it does.
   * Returns a promise while more than a quarter of maxBackpressure is queued
   * for the connection (it resolves once the queue is back at that mark):
   * `await` it to follow the peer's pace. Sends that are not awaited meet
   * maxBackpressure (1008).
   * @throws ConnectionClosedError, ValidationError, SerializationError, WirecoreError (EBACKPRESSURE)
   */
  send(value: Out | WebSocketMessage): Promise<void> | void;
  sendText(text: string): Promise<void> | void;
  sendBinary(data: Uint8Array | ArrayBuffer): Promise<void> | void;
  sendJson(value: unknown): Promise<void> | void;
  /** Start the close handshake (default 1000; reason at most 123 bytes). */
  close(code?: number, reason?: string): void;
  /** Receive every app.publish(topic, ...) until unsubscribed or closed (ConfigError: bad topic).
   * With { since } on a history topic: replay after that position first (docs/scaling.md). */
  subscribe(topic: string): void;
  subscribe(topic: string, options: { since: string }): Recovery;
  /** End a subscription; false when the connection was not subscribed. */
  unsubscribe(topic: string): boolean;
  /** The topics this connection is subscribed to (in no particular order). */
  readonly topics: string[];
  /** Stream style: the next message, or null once the connection closed. */
  receive(): Promise<In | null>;
  [Symbol.asyncIterator](): AsyncIterator<In>;
}

/** Callback style: the handlers of one connection. */
export interface WebSocketResponseHandlers {
  /** Called with each message; the result is sent back (string: text, bytes: binary, object: JSON). */
  onMessage?(msg: WebSocketMessage, socket: Socket<WebSocketMessage, unknown>): unknown;
  /** Called once the connection is open, before its first message. */
  onConnect?(socket: Socket<WebSocketMessage, unknown>): unknown;
  onClose?(code: number, reason: string, socket: Socket<WebSocketMessage, unknown>): unknown;
  /** Handles errors of this connection; its result is sent. Rethrow to close with 1011. */
  onError?(err: Error, socket: Socket<WebSocketMessage, unknown>): unknown;
}

export class WebSocketResponse implements WebSocketResponseHandlers {
  constructor(handlers?: WebSocketResponseHandlers);
  onMessage?(msg: WebSocketMessage, socket: Socket<WebSocketMessage, unknown>): unknown;
  onConnect?(socket: Socket<WebSocketMessage, unknown>): unknown;
  onClose?(code: number, reason: string, socket: Socket<WebSocketMessage, unknown>): unknown;
  onError?(err: Error, socket: Socket<WebSocketMessage, unknown>): unknown;
}

/** Limits and negotiation, per endpoint (or as App-wide defaults). */
export interface EndpointOptions {
  /** Largest message accepted, in bytes (default 1 MiB). */
  maxPayload?: number;
  /** Ping after this many ms of silence (default 120000; 0 or Infinity: never). */
  idleTimeout?: number;
  /** Close when a ping's pong does not come back within this many ms (default 30000). */
  pongTimeout?: number;
  /** Most bytes queued for one connection before it is closed with 1008 (default 4 MiB). */
  maxBackpressure?: number;
  /** Close with 1008 when a write in flight has not completed within this many ms (default 30000; 0 or Infinity: never). */
  sendTimeout?: number;
  /** Frames one message may span; past it the connection closes with 1009 (default 4096). */
  maxMessageFragments?: number;
  /** permessage-deflate: 'shared' (default; no zlib state while idle), 'dedicated' (context takeover) or 'off'. */
  compression?: 'shared' | 'dedicated' | 'off' | boolean;
  /** Messages shorter than this many bytes go out uncompressed (default 1024). */
  compressionThreshold?: number;
  /** Dedicated mode: LZ77 window bits of each connection's streams, 9..15 (default 15). */
  compressionWindowBits?: number;
  /** Close with 1008 when a fragmented message is not complete this many ms after its first frame (default 60000; 0 or Infinity: never). */
  messageTimeout?: number;
  /** Exact Origin values accepted (none: any origin); others get 403. */
  allowedOrigins?: string[];
  /** Subprotocols in order of preference. */
  subprotocols?: string[];
  /** What the core does with an invalid message nobody handles (default 'reply'). */
  invalidMessages?: 'reply' | 'close' | 'ignore';
  /** Make the `format` keyword assert instead of annotate. */
  formatAssert?: boolean;
  /** Messages per second per connection (default 0: no limit; docs/security.md). */
  messageRate?: number;
  /** Messages a connection may send at once (default: messageRate). */
  messageBurst?: number;
  /** Payload bytes per second per connection (default 0: no limit). */
  byteRate?: number;
  /** Bytes a connection may send at once (default: byteRate); a larger message never passes. */
  byteBurst?: number;
  /** Over a rate: drop the message unseen (default) or close with 1008 "rate limit". */
  rateLimitAction?: 'drop' | 'close';
}

export interface AppOptions extends EndpointOptions {
  /** 0 = unlimited; beyond it new connections get 503. */
  maxConnections?: number;
  maxHandshakeSize?: number;
  handshakeTimeout?: number;
  /** Open connections per remote address (IPv6: per /64); beyond it 429 (default 0: no limit). */
  maxConnectionsPerAddress?: number;
  /** Upgrade requests per second per remote address; beyond it 429 (default 0: no limit). */
  handshakeRate?: number;
  /** Upgrade requests an address may make at once (default: handshakeRate). */
  handshakeBurst?: number;
  /** Proxies (addresses or CIDRs) whose X-Forwarded-For / Forwarded names the client. */
  trustedProxies?: string[];
  /** Memory budget over all connections, in bytes (default 256 MiB, or a quarter of the memory available when less; Infinity: none). */
  maxBufferedBytes?: number;
  /** Topics one connection may subscribe to (default 0: 1024); past it subscribe throws ConfigError (ETOOMANY). */
  maxTopicsPerConn?: number;
  /** Do not keep the process alive while listening. */
  unref?: boolean;
  /** A backplane URL, redis://[[user]:password@]host[:port][/db] (docs/scaling.md). */
  broker?: string;
  /** Serve wss:// (TLS 1.2/1.3, done in the core). */
  tls?: TlsOptions;
  /** Answer plain GETs on these paths on the WebSocket port (docs/operations.md). */
  metricsPath?: string;
  healthPath?: string;
  /** Serve /metrics and /health (or the paths above) on a port of their own; 0 picks one. */
  metricsPort?: number;
}

export type Pem = string | Uint8Array | Array<string | Uint8Array>;

export interface TlsCertificate {
  /** PEM: the leaf, then intermediates (an array is joined). */
  cert: Pem;
  key: Pem;
  /** An encrypted key's passphrase. */
  passphrase?: string;
}

export interface TlsOptions extends TlsCertificate {
  /** More certificates chosen by the client's SNI name ("*.example.com": one label). */
  sni?: Record<string, TlsCertificate>;
  /** PEM CA certificate(s): clients must present a certificate one of them signed. */
  ca?: Pem;
}

/** One structured event of the core: connection open/close, refused upgrade, error. */
export interface LogEvent {
  level: 'debug' | 'info' | 'warning' | 'error';
  event: 'open' | 'close' | 'reject' | 'error';
  conn: number;
  remote: string;
  port: number;
  path: string;
  status: number;
  code: number;
  error: string;
  message: string;
  duration: number;
  bytesIn: number;
  bytesOut: number;
}

/** app.stats(): every counter (docs/operations.md). */
export interface Stats {
  workers: number;
  connections: number;
  connections_total: number;
  messages_in: number;
  bytes_in: number;
  messages_out: number;
  bytes_out: number;
  topics: number;
  subscriptions: number;
  max_connections: number;
  handshakes: Record<string, number>;
  dropped: Record<string, number>;
  broker: { up: number; published: number; received: number; invalid: number; reconnects: number } | null;
  endpoints: Record<string, {
    connections: number;
    connections_total: number;
    messages_in: number;
    bytes_in: number;
    messages_out: number;
    bytes_out: number;
    errors: Record<string, number>;
    close_codes: Record<string, number>;
    handler_count: number;
    handler_seconds: number;
  }>;
}

export interface BrokerStats {
  state: 'connecting' | 'up' | 'down';
  published: number;
  dropped: number;
  received: number;
  invalid: number;
  reconnects: number;
  channels: number;
  pendingBytes: number;
}

export interface TypedOptions<In, Out> extends EndpointOptions {
  /** The JSON Schema every message must satisfy (validated in C). */
  messageSchema?: JsonSchema;
  /** Checked on every value sent through this endpoint. */
  responseSchema?: JsonSchema;
  /** 'json' (text frames, default) or 'msgpack' (binary frames); 'raw' hands over WebSocketMessages. */
  serializer?: 'json' | 'msgpack' | 'raw';
  /** Before the upgrade: throw (or resolve to) a Reject to refuse. */
  onConnect?(ctx: Socket<In, Out>): unknown;
  onDisconnect?(ctx: Socket<In, Out>, code: number, reason: string): unknown;
  /** ValidationError, UnknownMessageError, DeserializationError or a handler's error; the result is sent. */
  onError?(err: Error, ctx: Socket<In, Out>): unknown;
}

export interface StreamOptions<In, Out> extends TypedOptions<In, Out> {
  stream: true;
}

/** Base class of class endpoints: one instance per connection. */
export class WebSocketEndpoint<Out = WireValue> {
  /** The route pattern, e.g. '/rooms/{room}'. */
  static path?: string;
  static serializer?: 'json' | 'msgpack';
  /** Message kinds: { message: schema } dispatches to receiveMessage(data). */
  static messages?: Record<string, JsonSchema>;
  static responseSchema?: JsonSchema;
  static options?: EndpointOptions;
  readonly socket: Socket<WireValue, Out>;
  readonly request: Request;
  readonly params: Record<string, string>;
  readonly query: Record<string, string>;
  send(value: Out): Promise<void> | void;
  close(code?: number, reason?: string): void;
  subscribe(topic: string): void;
  subscribe(topic: string, options: { since: string }): Recovery;
  unsubscribe(topic: string): boolean;
  readonly topics: string[];
  onConnect?(request: Request): unknown;
  onDisconnect?(code: number, reason: string): unknown;
  onError?(err: Error): unknown;
  receive?(data: any): unknown;
  [receiver: `receive${string}`]: ((data: any) => unknown) | undefined;
}

export type EndpointClass = (new () => WebSocketEndpoint<any>) & {
  path?: string;
  serializer?: 'json' | 'msgpack';
  messages?: Record<string, JsonSchema>;
  responseSchema?: JsonSchema;
  options?: EndpointOptions;
};

export class App extends EventEmitter {
  constructor(options?: AppOptions);
  readonly options: AppOptions;
  /** The bound port once listening. */
  readonly port: number | undefined;
  readonly host: string | undefined;
  readonly connectionCount: number;
  /**
   * Send `message` to every connection subscribed to `topic` but `exclude`:
   * a string as a text frame, a Uint8Array / ArrayBuffer as a binary frame,
   * any other value encoded per subscriber codec (JSON text, MessagePack binary).
   * Returns the number of connections it was queued for.
   */
  publish(
    topic: string,
    message: unknown,
    options?: { exclude?: Socket<any, any> | WebSocketEndpoint<any> | null },
  ): number;
  /** Keep the last `history` publications of `pattern` ('room:*': a prefix), each for at most
   * `ttl` seconds; publications then carry { topic, offset, data } (docs/scaling.md). */
  topic(pattern: string, options: { history: number; ttl?: number }): this;
  /** How many connections are subscribed to `topic`. */
  subscriberCount(topic: string): number;

  /** Callback style: the factory runs per connection (before the upgrade; it may Reject). */
  websocket(
    path: string,
    factory: (request: Request, socket: Socket<WebSocketMessage, unknown>) =>
      WebSocketResponse | WebSocketResponseHandlers | Reject | Promise<WebSocketResponse | WebSocketResponseHandlers | Reject>,
    options?: EndpointOptions,
  ): this;
  /** Stream style: the handler owns the connection; iterate it for messages. */
  websocket<In = WebSocketMessage, Out = unknown>(
    path: string,
    options: StreamOptions<In, Out>,
    handler: (socket: Socket<In, Out>) => unknown,
  ): this;
  /** Typed handler: messages validated against messageSchema; the result is sent. */
  websocket<In = any, Out = any>(
    path: string,
    options: TypedOptions<In, Out>,
    handler: (message: In, ctx: Socket<In, Out>) => Reply<Out> | Promise<Reply<Out>>,
  ): this;

  /** Register a class endpoint. */
  include(endpoint: EndpointClass, options?: EndpointOptions & { path?: string }): this;

  /** workers > 1: the node:cluster primary forks and supervises that many workers. */
  listen(options?: { host?: string; port?: number; workers?: number } | number):
    Promise<{ host: string; port: number; workers?: number }>;
  url(path?: string): string;
  /** New certificate and key for new connections; open ones keep theirs. */
  reloadTls(tls: TlsOptions): void;
  /** Stop accepting (the backlog is served), finish (at most `timeout` ms), then close. */
  drain(options?: { timeout?: number }): Promise<void>;
  /** The broker's counters, or null without a broker. */
  brokerStats(): BrokerStats | null;
  /** Every counter (null once closed). */
  stats(): Stats | null;
  /** The Prometheus text /metrics answers (null once closed). */
  metrics(): string | null;
  /** The metrics listener's port (options.metricsPort), once listening. */
  metricsPort: number | undefined;
  /** Graceful: close every connection with 1001, wait (at most `timeout` ms), release the loop. */
  close(options?: { timeout?: number }): Promise<void>;
  unref(): this;
  ref(): this;
  testClient(): TestClient;

  on(event: 'error', listener: (err: Error, socket: Socket<any, any> | undefined) => void): this;
  /** Broker state changes (without a listener: one stderr line each). */
  on(event: 'log', listener: (e: LogEvent) => void): this;
  on(event: 'broker', listener: (e: { state: BrokerStats['state']; message: string }) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export class Reject extends Error {
  constructor(status?: number, message?: string);
  readonly status: number;
}

export class WirecoreError extends Error {
  constructor(message: string, info?: { code?: string; errno?: number });
  /** The core's error name, e.g. 'EVALIDATION'. */
  readonly code: string;
  readonly errno: number;
}
export class ValidationError extends WirecoreError {
  /** JSON Pointer of the failing value ('' = the root). */
  readonly path: string;
  /** The failing keyword, e.g. 'type'. */
  readonly keyword: string;
  readonly schemaPath: string;
}
export class UnknownMessageError extends WirecoreError {}
export class DeserializationError extends WirecoreError {
  readonly offset: number;
}
export class SerializationError extends WirecoreError {}
export class ConnectionClosedError extends WirecoreError {
  constructor(message?: string, info?: { closeCode?: number; reason?: string });
  readonly closeCode?: number;
  readonly reason?: string;
}
/** The peer broke RFC 6455 (bad frames, invalid UTF-8). */
export class ProtocolError extends WirecoreError {}
/** The runtime itself failed (out of memory, an event loop error). */
export class InternalError extends WirecoreError {}
/** A bad argument, option, schema, route pattern or listen address. */
export class ConfigError extends WirecoreError {}
/** A message was larger than maxPayload (the connection closes with 1009). */
export class MessageTooBigError extends WirecoreError {}
/** A send found the queue over maxBackpressure (the connection closes with 1008). */
export class BackpressureError extends WirecoreError {}
/** An application handler failed. */
export class HandlerError extends WirecoreError {}

export class HandshakeError extends Error {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
}

export class TestWebSocket {
  readonly protocol: string | undefined;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  send(data: string | Uint8Array | WebSocketMessage): void;
  sendText(text: string): void;
  sendBytes(data: Uint8Array): void;
  sendJson(value: unknown): void;
  sendMsgpack(value: unknown): void;
  sendRaw(bytes: Uint8Array): void;
  sendFragments(parts: Array<string | Uint8Array>, binary?: boolean): void;
  ping(data?: string): void;
  receive(timeout?: number): Promise<WebSocketMessage>;
  receiveText(timeout?: number): Promise<string>;
  receiveBytes(timeout?: number): Promise<Buffer>;
  receiveJson<T = any>(timeout?: number): Promise<T>;
  receiveMsgpack<T = any>(timeout?: number): Promise<T>;
  close(code?: number, reason?: string, timeout?: number): Promise<{ code: number; reason: string }>;
  waitClosed(timeout?: number): Promise<{ code: number; reason: string }>;
  terminate(): void;
}

export class TestClient {
  constructor(app: App);
  websocket(
    path: string,
    options?: { headers?: Record<string, string>; protocols?: string | string[]; origin?: string; timeout?: number },
  ): Promise<TestWebSocket>;
  close(): void;
}

/** Encode with the core's codecs. */
export function encode(value: unknown, serializer?: 'json' | 'msgpack'): Buffer;
/** Decode with the core's codecs. */
export function decode<T = WireValue>(bytes: Uint8Array | string, serializer?: 'json' | 'msgpack'): T;
export const version: string;

declare const wirecore: {
  App: typeof App;
  WebSocketResponse: typeof WebSocketResponse;
  WebSocketMessage: typeof WebSocketMessage;
  WebSocketEndpoint: typeof WebSocketEndpoint;
  Socket: typeof Socket;
  Reject: typeof Reject;
  WirecoreError: typeof WirecoreError;
  ValidationError: typeof ValidationError;
  UnknownMessageError: typeof UnknownMessageError;
  DeserializationError: typeof DeserializationError;
  SerializationError: typeof SerializationError;
  ConnectionClosedError: typeof ConnectionClosedError;
  ProtocolError: typeof ProtocolError;
  InternalError: typeof InternalError;
  ConfigError: typeof ConfigError;
  MessageTooBigError: typeof MessageTooBigError;
  BackpressureError: typeof BackpressureError;
  HandlerError: typeof HandlerError;
  TestClient: typeof TestClient;
  TestWebSocket: typeof TestWebSocket;
  HandshakeError: typeof HandshakeError;
  encode: typeof encode;
  decode: typeof decode;
  version: string;
};
export default wirecore;

/** What socket.subscribe(topic, { since }) found. */
export interface Recovery {
  /** Every retained publication after `since` follows, then the live ones. */
  recovered: boolean;
  /** null, or 'too_old' | 'epoch' | 'invalid' | 'unavailable' (the client got { topic, type: 'truncated', offset }). */
  reason: 'too_old' | 'epoch' | 'invalid' | 'unavailable' | null;
  /** The topic's current position. */
  position: string;
  /** Publications replayed from the history. */
  replayed: number;
}
