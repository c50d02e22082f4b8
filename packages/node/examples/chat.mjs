// Typed handler: messages are checked against a JSON Schema in C before the
// handler runs; the reply is checked against responseSchema and encoded in C.
// Run: node examples/chat.mjs   (then send {"text":"hi"} to ws://127.0.0.1:8000/chat/lobby)
import { App, Reject } from 'wirecore';

const MessageSchema = {
  type: 'object',
  properties: { text: { type: 'string', minLength: 1, maxLength: 500 } },
  required: ['text'],
};
const ResponseSchema = {
  type: 'object',
  properties: { echo: { type: 'string' }, room: { type: 'string' } },
  required: ['echo', 'room'],
};

const app = new App({ maxPayload: 64 * 1024, idleTimeout: 30_000 });

app.websocket('/chat/{room}', {
  messageSchema: MessageSchema,
  responseSchema: ResponseSchema,
  onConnect: (ctx) => {
    if (ctx.params.room === 'private') throw new Reject(403); // refused before the upgrade
  },
  onDisconnect: (ctx, code) => console.log(`left ${ctx.params.room} with ${code}`),
}, async (message, ctx) => ({ echo: message.text, room: ctx.params.room }));

if (process.env.WIRECORE_EXAMPLE_SMOKE) {
  const client = app.testClient();
  const ws = await client.websocket('/chat/lobby');
  ws.sendJson({ text: 'hi' });
  console.log('reply:', await ws.receiveJson());
  ws.sendJson({ text: 42 });
  console.log('invalid message answered with:', await ws.receiveJson());
  await client.websocket('/chat/private').catch((err) => console.log('private room:', err.status));
  await ws.close();
  await app.close();
} else {
  const { port } = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8000) });
  console.log(`listening on ws://127.0.0.1:${port}/chat/{room}`);
  process.on('SIGINT', () => app.close());
}
