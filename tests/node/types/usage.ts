// Type-level test of index.d.ts: compiled with `tsc --noEmit` by types.test.mjs.
// Every export is used the way docs/node.md shows; the @ts-expect-error lines
// must fail to compile, so the types are not simply `any`.
import wirecore, {
  App, WebSocketResponse, WebSocketMessage, WebSocketEndpoint, Reject, Socket,
  ValidationError, UnknownMessageError, DeserializationError, SerializationError,
  ConnectionClosedError, WirecoreError, ProtocolError, HandshakeError, TestClient, TestWebSocket,
  encode, decode, version, type Request, type JsonSchema, type WireValue,
} from 'wirecore';

interface ChatIn { text: string }
interface ChatOut { echo: string; room: string }

const MessageSchema: JsonSchema = { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] };

const app = new App({ maxPayload: 1024, idleTimeout: 1000, allowedOrigins: ['https://a'], subprotocols: ['v1'], unref: true });

app.websocket('/echo', async (request: Request) => new WebSocketResponse({
  onMessage: async (msg: WebSocketMessage) => (msg.isText() ? msg.asText() : msg.asBinary()),
  onConnect: async (socket) => { socket.sendText('hi'); },
  onClose: async (code: number, reason: string) => { void code; void reason; },
  onError: async (err: Error) => { void err; },
}), { maxBackpressure: 1 << 20 });

app.websocket<ChatIn, ChatOut>('/chat/{room}', {
  messageSchema: MessageSchema,
  responseSchema: { type: 'object' },
  onConnect: (ctx) => { if (!ctx.query.token) throw new Reject(401); },
  onDisconnect: (ctx, code, reason) => { void ctx.params; void code; void reason; },
  onError: (err) => (err instanceof ValidationError ? { echo: err.path + err.keyword, room: '' } : undefined),
}, async (message, ctx) => {
  const text: string = message.text;
  ctx.send({ echo: text, room: ctx.params.room });
  return { echo: text, room: ctx.params.room };
});

app.websocket('/feed', { stream: true }, async (socket: Socket<WebSocketMessage, unknown>) => {
  socket.sendJson({ hello: socket.request.query.user });
  for await (const msg of socket) socket.send(msg);
  const next: WebSocketMessage | null = await socket.receive();
  void next;
  socket.close(1000, 'bye');
});

class Room extends WebSocketEndpoint<{ ok: boolean }> {
  static path = '/rooms/{room}';
  static serializer = 'msgpack' as const;
  static messages = { message: MessageSchema };
  async onConnect(request: Request) { if (!request.params.room) throw new Reject(404); }
  async receiveMessage(data: ChatIn) { this.send({ ok: data.text.length > 0 }); return { ok: true }; }
  async onError(err: Error) { return err instanceof UnknownMessageError ? { ok: false } : undefined; }
  async onDisconnect(code: number, reason: string) { void code; void reason; }
}
app.include(Room);
app.include(Room, { path: '/other/{room}', maxPayload: 10 });

async function main(): Promise<void> {
  const where: { host: string; port: number } = await app.listen({ host: '127.0.0.1', port: 0 });
  void where;
  const url: string = app.url('/echo');
  void url;
  const client: TestClient = app.testClient();
  const ws: TestWebSocket = await client.websocket('/echo', { headers: { a: 'b' }, protocols: ['v1'] });
  ws.send('x');
  const m: WebSocketMessage = await ws.receive();
  const j: { a: number } = await ws.receiveJson<{ a: number }>();
  void m; void j;
  const closed: { code: number; reason: string } = await ws.close(1000, '');
  void closed;
  const bytes: Buffer = encode({ a: 1 }, 'msgpack');
  const v: WireValue = decode(bytes, 'msgpack');
  void v;
  const errs: Error[] = [new WirecoreError('x'), new DeserializationError('x'), new SerializationError('x'),
    new ConnectionClosedError(), new ProtocolError('x'), new HandshakeError()];
  void errs;
  const s: string = version;
  void s;
  void wirecore.App;
  app.on('error', (err, socket) => { void err; void socket; });
  app.unref().ref();
  app.websocket('/topics', { stream: true }, async (socket) => {
    socket.subscribe('room');
    const subscribed: string[] = socket.topics;
    const was: boolean = socket.unsubscribe('room');
    const n: number = app.publish('room', { text: 'hi' }, { exclude: socket });
    void subscribed; void was; void n;
  });
  const count: number = app.subscriberCount('room') + app.publish('room', Buffer.from('x'));
  void count;
  await app.close({ timeout: 100 });
}
void main;

// @ts-expect-error: a topic is a string
app.publish(7, 'x');
// @ts-expect-error: a path is a string
app.websocket(42, () => new WebSocketResponse());
// @ts-expect-error: unknown option
new App({ maxPayloadBytes: 1 });
// @ts-expect-error: typed handlers get the declared message type
app.websocket<ChatIn, ChatOut>('/t', {}, (message) => { const n: number = message.text; return undefined; });
// @ts-expect-error: serializer is json, msgpack or raw
app.websocket('/s', { serializer: 'xml' }, () => undefined);
