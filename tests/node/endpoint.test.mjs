// Class endpoints: one receiveX method per message kind, chosen by the C dispatcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, until } from './helpers.mjs';

const { WebSocketEndpoint, Reject, UnknownMessageError, ValidationError } = wirecore;

const MessageSchema = {
  type: 'object',
  properties: { type: { const: 'message' }, text: { type: 'string' } },
  required: ['type', 'text'],
};
const ReactionSchema = {
  type: 'object',
  properties: { type: { const: 'reaction' }, emoji: { type: 'string', maxLength: 4 } },
  required: ['type', 'emoji'],
};

function roomClass(log, serializer = 'json') {
  return class Room extends WebSocketEndpoint {
    static path = '/rooms/{room}';
    static serializer = serializer;
    static messages = { message: MessageSchema, reaction: ReactionSchema };

    async onConnect(request) {
      if (request.query.token === 'bad') throw new Reject(401);
      log.push(`connect ${request.params.room}`);
      this.send({ type: 'welcome', room: this.params.room });
    }

    async receiveMessage(data) {
      log.push(`message ${data.text}`);
      await sleep(1);
      return { ok: true, text: data.text };
    }

    receiveReaction(data) {
      log.push(`reaction ${data.emoji}`);
    }

    onDisconnect(code, reason) {
      log.push(`disconnect ${code} ${reason}`);
    }
  };
}

test('dispatches each message kind to its receive method', async (t) => {
  const log = [];
  const app = await serve(t, (a) => a.include(roomClass(log)));
  const ws = await app.testClient().websocket('/rooms/blue');
  assert.deepEqual(await ws.receiveJson(), { type: 'welcome', room: 'blue' });
  ws.sendJson({ type: 'reaction', emoji: '👍' });
  ws.sendJson({ type: 'message', text: 'hello' });
  assert.deepEqual(await ws.receiveJson(), { ok: true, text: 'hello' });
  await ws.close(1000, 'done');
  await until(() => log.length === 4);
  assert.deepEqual(log, ['connect blue', 'reaction 👍', 'message hello', 'disconnect 1000 done']);
});

test('works with the ws client and msgpack', async (t) => {
  const log = [];
  const app = await serve(t, (a) => a.include(roomClass(log, 'msgpack')));
  const ws = wsConnect(t, app.url('/rooms/red'));
  await ws.opened;
  assert.deepEqual(wirecore.decode((await ws.next()).data, 'msgpack'), { type: 'welcome', room: 'red' });
  ws.send(wirecore.encode({ type: 'message', text: 'packed' }, 'msgpack'));
  assert.deepEqual(wirecore.decode((await ws.next()).data, 'msgpack'), { ok: true, text: 'packed' });
});

test('onConnect may refuse with Reject(401)', async (t) => {
  const app = await serve(t, (a) => a.include(roomClass([])));
  await assert.rejects(app.testClient().websocket('/rooms/x?token=bad'), (err) => err.status === 401);
  const ws = wsConnect(t, app.url('/rooms/x?token=bad'));
  await assert.rejects(ws.opened, (err) => err.status === 401);
});

test('without onError, an unknown message gets the default error reply', async (t) => {
  const app = await serve(t, (a) => a.include(roomClass([])));
  const ws = await app.testClient().websocket('/rooms/a');
  await ws.receiveJson(); // welcome
  ws.sendJson({ type: 'nope' });
  assert.equal((await ws.receiveJson()).type, 'error');
  ws.sendJson({ type: 'message', text: 'still open' });
  assert.deepEqual(await ws.receiveJson(), { ok: true, text: 'still open' });
});

test('onError gets UnknownMessageError and ValidationError with path and keyword', async (t) => {
  const errors = [];
  class Strict extends roomClass([]) {
    static path = '/strict';
    onError(err) {
      errors.push(err);
      return { type: 'error', kind: err.constructor.name, path: err.path ?? null, keyword: err.keyword ?? null };
    }
  }
  const app = await serve(t, (a) => a.include(Strict));
  const ws = await app.testClient().websocket('/strict');
  await ws.receiveJson();
  ws.sendJson({ type: 'other' });
  assert.equal((await ws.receiveJson()).kind, 'UnknownMessageError');
  ws.sendJson({ type: 'reaction', emoji: 'too long for this' });
  const r = await ws.receiveJson();
  assert.ok(r.kind === 'ValidationError' || r.kind === 'UnknownMessageError', r.kind);
  if (r.kind === 'ValidationError') assert.deepEqual([r.path, r.keyword], ['/emoji', 'maxLength']);
  assert.ok(errors[0] instanceof UnknownMessageError);
  assert.ok(errors[1] instanceof ValidationError || errors[1] instanceof UnknownMessageError);
});

test('a receive method that throws closes with 1011 unless onError answers', async (t) => {
  class Thrower extends WebSocketEndpoint {
    static path = '/thrower';
    static messages = { message: MessageSchema };
    receiveMessage() { throw new Error('receive failed'); }
  }
  class Caught extends Thrower {
    static path = '/caught';
    onError(err) { return { caught: err.message }; }
  }
  const app = await serve(t, (a) => { a.include(Thrower); a.include(Caught); });
  const client = app.testClient();
  const c = await client.websocket('/caught');
  c.sendJson({ type: 'message', text: 'x' });
  assert.deepEqual(await c.receiveJson(), { caught: 'receive failed' });
  const ws = await client.websocket('/thrower');
  ws.sendJson({ type: 'message', text: 'x' });
  assert.equal((await ws.waitClosed()).code, 1011);
  c.sendJson({ type: 'message', text: 'y' });
  assert.deepEqual(await c.receiveJson(), { caught: 'receive failed' });
});

test('a class without messages gets every message in receive()', async (t) => {
  class Any extends WebSocketEndpoint {
    static path = '/any';
    receive(data) { return { got: data }; }
  }
  const app = await serve(t, (a) => a.include(Any));
  const ws = await app.testClient().websocket('/any');
  ws.sendJson([1, 'two', null]);
  assert.deepEqual(await ws.receiveJson(), { got: [1, 'two', null] });
});

test('receiver names follow the message keys', async (t) => {
  class Names extends WebSocketEndpoint {
    static path = '/names';
    static messages = {
      chat_message: { properties: { t: { const: 'a' } }, required: ['t'] },
      'user-joined': { properties: { t: { const: 'b' } }, required: ['t'] },
    };
    receiveChatMessage() { return 'chat'; }
    receiveUserJoined() { return 'joined'; }
  }
  const app = await serve(t, (a) => a.include(Names));
  const ws = await app.testClient().websocket('/names');
  ws.sendJson({ t: 'b' });
  assert.equal(await ws.receiveJson(), 'joined');
  ws.sendJson({ t: 'a' });
  assert.equal(await ws.receiveJson(), 'chat');
});

test('include() refuses classes that cannot work', () => {
  const app = new wirecore.App();
  class Missing extends WebSocketEndpoint {
    static path = '/m';
    static messages = { message: MessageSchema };
  }
  assert.throws(() => app.include(Missing), /receiveMessage/);
  class Plain { static path = '/p'; }
  assert.throws(() => app.include(Plain), TypeError);
  class Raw extends WebSocketEndpoint { static path = '/r'; static serializer = 'raw'; receive() {} }
  assert.throws(() => app.include(Raw), TypeError);
  return app.close();
});

test('one instance per connection keeps its own state', async (t) => {
  class Counter extends WebSocketEndpoint {
    static path = '/count';
    count = 0;
    receive() { this.count += 1; return this.count; }
  }
  const app = await serve(t, (a) => a.include(Counter));
  const client = app.testClient();
  const a = await client.websocket('/count');
  const b = await client.websocket('/count');
  a.sendJson(0); a.sendJson(0); b.sendJson(0);
  assert.equal(await a.receiveJson(), 1);
  assert.equal(await a.receiveJson(), 2);
  assert.equal(await b.receiveJson(), 1);
});
