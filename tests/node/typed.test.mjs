// Typed handlers: app.websocket(path, { messageSchema, responseSchema, ... }, (message, ctx) => reply).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, until } from './helpers.mjs';

const { Reject, ValidationError, DeserializationError, SerializationError } = wirecore;

const MessageSchema = {
  type: 'object',
  properties: { text: { type: 'string', maxLength: 20 } },
  required: ['text'],
};
const ResponseSchema = {
  type: 'object',
  properties: { echo: { type: 'string' }, room: { type: 'string' } },
  required: ['echo'],
};

function chat(app, extra = {}) {
  app.websocket('/chat/{room}', { messageSchema: MessageSchema, responseSchema: ResponseSchema, ...extra },
    async (message, ctx) => {
      if (message.text === 'bad-response') return { echo: 42 };
      return { echo: message.text, room: ctx.params.room };
    });
}

test('validates in C and answers with the handler result', async (t) => {
  const app = await serve(t, (a) => chat(a));
  const ws = await app.testClient().websocket('/chat/lobby');
  ws.sendJson({ text: 'hi' });
  assert.deepEqual(await ws.receiveJson(), { echo: 'hi', room: 'lobby' });
});

test('works with the ws client', async (t) => {
  const app = await serve(t, (a) => chat(a));
  const ws = wsConnect(t, app.url('/chat/kitchen'));
  await ws.opened;
  ws.send(JSON.stringify({ text: 'hey' }));
  assert.deepEqual(await ws.nextJson(), { echo: 'hey', room: 'kitchen' });
});

test('an invalid message gets the default error reply and the connection stays open', async (t) => {
  const app = await serve(t, (a) => chat(a));
  const ws = await app.testClient().websocket('/chat/lobby');
  ws.sendJson({ text: 5 });
  const reply = await ws.receiveJson();
  assert.equal(reply.type, 'error');
  assert.ok(reply.error, 'the reply says what failed');
  ws.sendJson({ text: 'after' });
  assert.deepEqual(await ws.receiveJson(), { echo: 'after', room: 'lobby' });
});

test('undecodable JSON gets the default error reply', async (t) => {
  const app = await serve(t, (a) => chat(a));
  const ws = await app.testClient().websocket('/chat/lobby');
  ws.sendText('{"text": ');
  const reply = await ws.receiveJson();
  assert.equal(reply.type, 'error');
  ws.sendJson({ text: 'ok' });
  assert.equal((await ws.receiveJson()).echo, 'ok');
});

test('onError receives ValidationError with path and keyword, and its result is sent', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => chat(a, {
    responseSchema: undefined, // the error replies below are not chat responses
    onError: (err) => {
      seen.push(err);
      return { failed: err.code, path: err.path ?? null, keyword: err.keyword ?? null };
    },
  }));
  const ws = await app.testClient().websocket('/chat/lobby');
  ws.sendJson({ text: 'x'.repeat(30) });
  assert.deepEqual(await ws.receiveJson(), { failed: 'EVALIDATION', path: '/text', keyword: 'maxLength' });
  assert.ok(seen[0] instanceof ValidationError);
  ws.sendText('not json');
  const r = await ws.receiveJson();
  assert.equal(r.failed, 'EDESERIALIZE');
  assert.ok(seen[1] instanceof DeserializationError);
});

test('an onError that rethrows a validation error leaves the default reply', async (t) => {
  const app = await serve(t, (a) => chat(a, { onError: (err) => { throw err; } }));
  const ws = await app.testClient().websocket('/chat/lobby');
  ws.sendJson({});
  assert.equal((await ws.receiveJson()).type, 'error');
  ws.sendJson({ text: 'ok' });
  assert.equal((await ws.receiveJson()).echo, 'ok');
});

test('a response that breaks responseSchema closes with 1011 unless onError answers', async (t) => {
  const app = await serve(t, (a) => {
    chat(a);
    a.websocket('/guarded', { responseSchema: ResponseSchema, onError: (err) => ({ echo: `caught ${err.code}` }) },
      () => ({ echo: 1 }));
  });
  const client = app.testClient();
  const ws = await client.websocket('/chat/lobby');
  ws.sendJson({ text: 'bad-response' });
  assert.equal((await ws.waitClosed()).code, 1011);
  assert.ok(app.reported[0] instanceof ValidationError);
  const guarded = await client.websocket('/guarded');
  guarded.sendJson({});
  assert.deepEqual(await guarded.receiveJson(), { echo: 'caught EVALIDATION' });
});

test('ctx carries params, query, headers and can send and close', async (t) => {
  const app = await serve(t, (a) => a.websocket('/ctx/{id:int}', {}, (message, ctx) => {
    ctx.send({ first: true });
    if (message === 'close') ctx.close(4002, 'asked');
    return { id: ctx.params.id, user: ctx.query.user, agent: ctx.headers['x-test'], message };
  }));
  const ws = await app.testClient().websocket('/ctx/42?user=ann&user=bob', { headers: { 'X-Test': 'yes' } });
  ws.sendJson('hello');
  assert.deepEqual(await ws.receiveJson(), { first: true });
  assert.deepEqual(await ws.receiveJson(), { id: '42', user: 'ann', agent: 'yes', message: 'hello' });
  ws.sendJson('close');
  await ws.receiveJson();
  assert.deepEqual(await ws.waitClosed(), { code: 4002, reason: 'asked' });
});

test('onConnect may reject before the upgrade, synchronously or later', async (t) => {
  const app = await serve(t, (a) => {
    a.websocket('/auth', {
      onConnect: (ctx) => { if (ctx.query.token !== 'secret') throw new Reject(401); },
    }, (m) => m);
    a.websocket('/auth-async', {
      onConnect: async (ctx) => { await sleep(10); if (ctx.headers.authorization !== 'yes') throw new Reject(403); },
    }, (m) => m);
  });
  const client = app.testClient();
  await assert.rejects(client.websocket('/auth'), (err) => err.status === 401);
  const ok = await client.websocket('/auth?token=secret');
  ok.sendJson([1]);
  assert.deepEqual(await ok.receiveJson(), [1]);
  await assert.rejects(client.websocket('/auth-async'), (err) => err.status === 403);
  const ws = wsConnect(t, app.url('/auth-async'));
  await assert.rejects(ws.opened, (err) => err.status === 403);
  const ok2 = await client.websocket('/auth-async', { headers: { Authorization: 'yes' } });
  ok2.sendJson({ a: 1 });
  assert.deepEqual(await ok2.receiveJson(), { a: 1 });
});

test('sends made in onConnect go out right after the upgrade', async (t) => {
  const app = await serve(t, (a) => a.websocket('/greet', {
    onConnect: async (ctx) => { await sleep(5); ctx.send({ hello: ctx.query.name }); },
  }, () => undefined));
  const ws = await app.testClient().websocket('/greet?name=zed');
  assert.deepEqual(await ws.receiveJson(), { hello: 'zed' });
});

test('onDisconnect gets the close code and reason', async (t) => {
  const closes = [];
  const app = await serve(t, (a) => a.websocket('/bye', {
    onDisconnect: (ctx, code, reason) => closes.push([ctx.params, code, reason]),
  }, () => undefined));
  const ws = await app.testClient().websocket('/bye');
  await ws.close(4100, 'see you');
  await until(() => closes.length === 1);
  assert.deepEqual(closes[0], [{}, 4100, 'see you']);
});

test('the msgpack serializer decodes binary frames and encodes replies', async (t) => {
  const app = await serve(t, (a) => a.websocket('/mp', { serializer: 'msgpack', messageSchema: MessageSchema },
    (message) => ({ echo: message.text, bin: Buffer.from('raw'), n: 2n ** 63n })));
  const ws = await app.testClient().websocket('/mp');
  ws.sendMsgpack({ text: 'packed' });
  const reply = await ws.receiveMsgpack();
  assert.equal(reply.echo, 'packed');
  assert.equal(Buffer.from(reply.bin).toString(), 'raw');
  assert.equal(reply.n, 2n ** 63n);
  const w = wsConnect(t, app.url('/mp'));
  await w.opened;
  w.send(wirecore.encode({ text: 'from ws' }, 'msgpack'));
  const m = await w.next();
  assert.equal(m.isBinary, true);
  assert.equal(wirecore.decode(m.data, 'msgpack').echo, 'from ws');
});

test('unserializable results are SerializationErrors for onError', async (t) => {
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  const app = await serve(t, (a) => a.websocket('/ser', { onError: (err) => ({ error: err.constructor.name }) },
    (n) => (n === 1 ? cyclic : { big: 2n ** 70n })));
  const ws = await app.testClient().websocket('/ser');
  ws.sendJson(1);
  assert.deepEqual(await ws.receiveJson(), { error: SerializationError.name });
  ws.sendJson(2);
  assert.deepEqual(await ws.receiveJson(), { error: SerializationError.name });
});

test('JSON endpoints keep big integers exact as BigInt both ways', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => a.websocket('/big', { responseSchema: { type: 'object' } }, (m) => {
    seen.push(m);
    return { back: m.n + 1n, small: 1, f: () => 1, u: undefined, d: new Date(0) };
  }));
  const ws = await app.testClient().websocket('/big');
  ws.sendText('{"n": 9007199254740993, "__proto__": {"polluted": true}}');
  const reply = await ws.receiveText();
  assert.equal(reply, '{"back":9007199254740994,"small":1,"d":"1970-01-01T00:00:00.000Z"}');
  assert.equal(seen[0].n, 9007199254740993n);
  assert.equal(Object.getPrototypeOf(seen[0]), Object.prototype, '__proto__ is an own key, not the prototype');
  assert.deepEqual(Object.keys(seen[0]), ['n', '__proto__']);
});

test('JSON endpoints send values as JSON.stringify would', async (t) => {
  const seen = [];
  const app = await serve(t, (a) => a.websocket('/js', {}, (m) => {
    seen.push(m);
    return { n: NaN, list: [undefined, 1], nested: { toJSON: () => 'custom' } };
  }));
  const ws = await app.testClient().websocket('/js');
  ws.sendText('{"__proto__": {"x": 1}, "k": [1.5, true, null]}');
  assert.equal(await ws.receiveText(), '{"n":null,"list":[null,1],"nested":"custom"}');
  assert.equal(Object.getPrototypeOf(seen[0]), Object.prototype);
  assert.deepEqual(seen[0].k, [1.5, true, null]);
});

test('a schema that does not compile throws at registration', () => {
  const app = new wirecore.App();
  assert.throws(() => app.websocket('/bad', { messageSchema: { type: 12 } }, () => {}), (err) => err.code === 'ESCHEMA');
  assert.throws(() => app.websocket('no-slash', {}, () => {}), TypeError);
  assert.throws(() => app.websocket('/x/{', {}, () => {}), (err) => err.code === 'EROUTE');
  return app.close();
});
