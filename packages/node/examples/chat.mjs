// Chat rooms: each room is a topic. A typed handler checks every message
// against a JSON Schema in C, then app.publish sends it once to the whole
// room (the frame is built once and shared by every member's queue).
// Run: node examples/chat.mjs   (then send {"text":"hi"} to ws://127.0.0.1:8000/chat/lobby?user=ann)
import { App, Reject } from 'wirecore';

const MessageSchema = {
  type: 'object',
  properties: { text: { type: 'string', minLength: 1, maxLength: 500 } },
  required: ['text'],
};

const app = new App({ maxPayload: 64 * 1024, idleTimeout: 30_000 });

app.websocket('/chat/{room}', {
  messageSchema: MessageSchema,
  onConnect: (ctx) => {
    if (ctx.params.room === 'private') throw new Reject(403); // refused before the upgrade
    ctx.subscribe(ctx.params.room);
  },
  onDisconnect: (ctx, code) => {
    app.publish(ctx.params.room, { left: ctx.query.user ?? 'guest', code });
  },
}, (message, ctx) => {
  app.publish(ctx.params.room, { user: ctx.query.user ?? 'guest', text: message.text });
});

if (process.env.WIRECORE_EXAMPLE_SMOKE) {
  const client = app.testClient();
  const ann = await client.websocket('/chat/lobby?user=ann');
  const bob = await client.websocket('/chat/lobby?user=bob');
  ann.sendJson({ text: 'hi' });
  console.log('bob got:', await bob.receiveJson(), 'ann got:', await ann.receiveJson());
  console.log('members of lobby:', app.subscriberCount('lobby'));
  ann.sendJson({ text: 42 });
  console.log('invalid message answered with:', await ann.receiveJson());
  await client.websocket('/chat/private').catch((err) => console.log('private room:', err.status));
  await ann.close();
  console.log('bob got:', await bob.receiveJson());
  await bob.close();
  await app.close();
} else {
  const { port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://127.0.0.1:${port}/chat/{room}`);
  process.on('SIGINT', () => app.close());
}
