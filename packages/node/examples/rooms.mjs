// Class endpoint: one receiveX method per message kind; the C dispatcher picks
// it from the message's schema (here a `type` discriminator). MessagePack.
// Run: node examples/rooms.mjs
import { App, WebSocketEndpoint, Reject } from 'wirecore';

const MessageSchema = {
  type: 'object',
  properties: { type: { const: 'message' }, text: { type: 'string' } },
  required: ['type', 'text'],
};
const ReactionSchema = {
  type: 'object',
  properties: { type: { const: 'reaction' }, emoji: { type: 'string' } },
  required: ['type', 'emoji'],
};

class Room extends WebSocketEndpoint {
  static path = '/rooms/{room}';
  static serializer = 'msgpack';
  static messages = { message: MessageSchema, reaction: ReactionSchema };

  async onConnect(request) {
    if (request.query.token !== 'letmein') throw new Reject(401);
    this.send({ type: 'welcome', room: this.params.room }); // queued until the upgrade completes
  }

  async receiveMessage(data) {
    return { type: 'ack', text: data.text };
  }

  async receiveReaction(data) {
    return { type: 'ack', emoji: data.emoji };
  }

  async onError(err) {
    // UnknownMessageError, ValidationError (.path, .keyword), DeserializationError, or a handler's error
    return { type: 'error', kind: err.name, path: err.path };
  }

  async onDisconnect(code, reason) {
    console.log(`room ${this.params.room}: closed ${code} ${reason}`);
  }
}

const app = new App();
app.include(Room);

if (process.env.WIRECORE_EXAMPLE_SMOKE) {
  const client = app.testClient();
  await client.websocket('/rooms/blue').catch((err) => console.log('without a token:', err.status));
  const ws = await client.websocket('/rooms/blue?token=letmein');
  console.log(await ws.receiveMsgpack());
  ws.sendMsgpack({ type: 'message', text: 'hello' });
  console.log(await ws.receiveMsgpack());
  ws.sendMsgpack({ type: 'shout' });
  console.log(await ws.receiveMsgpack());
  await ws.close();
  await app.close();
} else {
  const { port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://127.0.0.1:${port}/rooms/{room}?token=letmein (MessagePack)`);
  process.on('SIGINT', () => app.close());
}
