// Topic history: app.topic(pattern, { history, ttl }), envelopes with positions
// and socket.subscribe(topic, { since }), against the real `ws` client on
// 127.0.0.1: recovery, truncation reports, MessagePack endpoints, bad
// arguments, and a client reconnecting 20 times while publications keep coming.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wirecore, serve, wsConnect, sleep, startRedis } from './helpers.mjs';

const { WebSocketResponse, WebSocketEndpoint, ConfigError } = wirecore;
const POSITION = /^[0-9a-f]{16}:[0-9]+$/;

/** /room/{name}?since=P subscribes in onConnect and then sends what it found;
 * /mp/{name}?since=P is a MessagePack endpoint. */
function historyRoutes(options) {
  return (a) => {
    a.topic('room:*', options);
    a.websocket('/room/{name}', () => new WebSocketResponse({
      onConnect: (socket) => {
        const rec = socket.subscribe(socket.params.name, { since: socket.query.since ?? '' });
        socket.sendText(JSON.stringify({ type: 'recovery', ...rec }));
      },
    }));
    a.include(class extends WebSocketEndpoint {
      static path = '/mp/{name}';
      static serializer = 'msgpack';
      static messages = { any: { type: 'object' } };
      onConnect() {
        this.subscribe(this.params.name, { since: this.query.since ?? '' });
      }
      receiveAny() {}
    });
  };
}

/** Connect to /room/...: the replay (or the truncated report) leaves at the
 * upgrade, before what onConnect sent. Returns [client, recovery, before]. */
async function join(t, app, path) {
  const ws = wsConnect(t, app.url(path));
  await ws.opened;
  const before = [];
  for (;;) {
    const m = await ws.nextJson();
    if (m.type === 'recovery') return [ws, m, before];
    before.push(m);
  }
}

test('with Redis a client recovers on another server from the shared history', async (t) => {
  const url = await startRedis(t);
  const a = await serve(t, historyRoutes({ history: 100 }), { broker: url });
  const b = await serve(t, historyRoutes({ history: 100 }), { broker: url });
  const [ws] = await join(t, a, '/room/room:x');
  for (let i = 1; i <= 3; i++) a.publish('room:x', { n: i }); // delivered when Redis announces it
  const got = [await ws.nextJson(), await ws.nextJson(), await ws.nextJson()];
  assert.deepEqual(got.map((m) => m.offset.split(':')[1]), ['1', '2', '3']);
  ws.close();
  b.publish('room:x', { n: 4 }); // the same sequence from the other server
  const [ws2, rec, before] = await join(t, b, `/room/room:x?since=${got[0].offset}`);
  assert.equal(rec.recovered, true);
  assert.equal(rec.replayed, 3);
  const epoch = got[0].offset.split(':')[0];
  assert.deepEqual(before.map((m) => [m.offset, m.data.n]), [[`${epoch}:2`, 2], [`${epoch}:3`, 3], [`${epoch}:4`, 4]]);
  a.publish('room:x', { n: 5 });
  assert.equal((await ws2.nextJson()).data.n, 5);
});

test('publications reach subscribers in an envelope with their position', async (t) => {
  const app = await serve(t, historyRoutes({ history: 100 }));
  const [ws, rec, before] = await join(t, app, '/room/room:1');
  assert.deepEqual(before, []);
  assert.equal(rec.recovered, true);
  assert.equal(rec.reason, null);
  assert.match(rec.position, POSITION);
  const epoch = rec.position.split(':')[0];
  app.publish('room:1', { hello: 'world' });
  app.publish('room:1', 'text is a string');
  assert.deepEqual(await ws.nextJson(), { topic: 'room:1', offset: `${epoch}:1`, data: { hello: 'world' } });
  assert.deepEqual(await ws.nextJson(), { topic: 'room:1', offset: `${epoch}:2`, data: 'text is a string' });
});

test('a client coming back gets exactly what it missed, then live ones', async (t) => {
  const app = await serve(t, historyRoutes({ history: 100 }));
  let [ws] = await join(t, app, '/room/room:a');
  for (let i = 1; i <= 5; i++) app.publish('room:a', { n: i });
  const got = [];
  for (let i = 0; i < 5; i++) got.push(await ws.nextJson());
  ws.terminate();
  for (let i = 6; i <= 8; i++) app.publish('room:a', { n: i });
  const [ws2, rec, before] = await join(t, app, `/room/room:a?since=${got[2].offset}`);
  assert.equal(rec.recovered, true);
  assert.equal(rec.replayed, 5);
  app.publish('room:a', { n: 9 });
  const ns = before.map((m) => m.data.n);
  ns.push((await ws2.nextJson()).data.n);
  assert.deepEqual(ns, [4, 5, 6, 7, 8, 9]);
});

test('lost positions are reported to the handler and to the client', async (t) => {
  const app = await serve(t, historyRoutes({ history: 3 }));
  for (let i = 1; i <= 10; i++) app.publish('room:t', { n: i });
  const [, first] = await join(t, app, '/room/room:t');
  const epoch = first.position.split(':')[0];
  const cases = [[`${epoch}:5`, 'too_old'], ['0123456789abcdef:5', 'epoch'], ['nonsense', 'invalid']];
  let seq = 10;
  for (const [since, reason] of cases) {
    const current = `${epoch}:${seq}`;
    const [ws, rec, before] = await join(t, app, `/room/room:t?since=${since}`);
    assert.equal(rec.recovered, false);
    assert.equal(rec.reason, reason);
    assert.equal(rec.position, current);
    assert.deepEqual(before, [{ topic: 'room:t', type: 'truncated', offset: current }]);
    app.publish('room:t', { n: 'live' }); // the subscription started all the same
    assert.deepEqual((await ws.nextJson()).data, { n: 'live' });
    seq++;
  }
});

test('MessagePack subscribers get the envelope in MessagePack', async (t) => {
  const app = await serve(t, historyRoutes({ history: 10 }));
  app.publish('room:m', { n: 1 });
  app.publish('room:m', { n: 2 });
  const [, rec] = await join(t, app, '/room/room:m');
  const epoch = rec.position.split(':')[0];
  const mp = wsConnect(t, app.url(`/mp/room:m?since=${epoch}:1`));
  await mp.opened;
  app.publish('room:m', { n: 3 });
  for (const n of [2, 3]) {
    const m = await mp.next();
    assert.ok(m.isBinary);
    assert.deepEqual(wirecore.decode(m.data, 'msgpack'), { topic: 'room:m', offset: `${epoch}:${n}`, data: { n } });
  }
});

test('bad configuration and topics without history are errors', async (t) => {
  const errs = [];
  const app = await serve(t, (a) => {
    a.topic('x', { history: 1 });
    a.websocket('/s', () => new WebSocketResponse({
      onConnect: (socket) => {
        for (const f of [() => socket.subscribe('no-history', { since: '' }), () => socket.subscribe('x', { since: 5 })]) {
          try { f(); } catch (err) { errs.push(`${err.constructor.name}: ${err.message}`); }
        }
        socket.sendText('done');
      },
    }));
  });
  for (const bad of [0, -1, 1000001, 2.5, true, undefined]) {
    assert.throws(() => app.topic('y', { history: bad }), ConfigError);
  }
  for (const bad of [0, -1, '1', Infinity]) {
    assert.throws(() => app.topic('y', { history: 1, ttl: bad }), ConfigError);
  }
  assert.throws(() => app.topic('', { history: 1 }), ConfigError);
  assert.throws(() => app.topic('x', { history: 2 }), ConfigError);
  app.topic('y*', { history: 1 });
  assert.throws(() => app.publish('y1', Buffer.from([0])), /encoded|JSON|serial/i);
  const ws = wsConnect(t, app.url('/s'));
  assert.equal((await ws.next()).text, 'done');
  assert.equal(errs.length, 2);
  assert.match(errs[0], /^ConfigError: .*no history/);
  assert.match(errs[1], /^TypeError: since must be a string/);
});

test('a client reconnecting 20 times during steady publishing sees each message once, in order', async (t) => {
  const app = await serve(t, historyRoutes({ history: 10000 }));
  const total = 2000;
  let done = false;
  const publisher = (async () => {
    for (let i = 1; i <= total; i++) {
      app.publish('room:s', { n: i });
      if (i % 10 === 0) await sleep(5); // a steady 2,000 per second
    }
    done = true;
  })();
  const seen = [];
  let position = '';
  let truncated = 0;
  for (let round = 0; round <= 20; round++) {
    const [ws, rec, before] = await join(t, app, `/room/room:s?since=${position}`);
    if (round > 0) assert.equal(rec.recovered, true);
    if (round === 20) assert.equal(done, false, 'the 20th reconnect came after the last publish');
    let got = 0;
    while ((round === 20 || got < 80) && seen[seen.length - 1] !== total) {
      const m = before.length ? before.shift() : await ws.nextJson();
      if (m.type === 'truncated') { truncated++; continue; }
      seen.push(m.data.n);
      position = m.offset;
      got++;
    }
    ws.terminate();
  }
  await publisher;
  const first = seen[0];
  assert.deepEqual(seen, Array.from({ length: total - first + 1 }, (_, i) => first + i));
  assert.equal(truncated, 0);
});
