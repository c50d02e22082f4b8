// The chat page's behaviour: join a room over the browser's WebSocket, show
// what the room says, send what the user types, leave. Plain JS, no build step.
//
// Protocol (the Python package's chat example; README.md has the details):
// connect to <server>/chat/<room>?user=<name>; send {"type":"chat","user",
// "text"} and, while typing, {"type":"typing"}; receive {"type":"chat","user",
// "text"}, {"type":"join"|"leave","user","members"}, {"type":"typing","user"}
// and {"type":"error","error"}. A server that simply relays every text frame
// (wire_chat) works too: what it relays is exactly what the others sent.
//
// Room events may come in the history envelope {"topic","offset","data"}
// (docs/scaling.md): the page keeps the last offset and, when the connection
// drops, reconnects by itself with backoff and ?since=<offset>, so it gets
// what it missed, once. {"type":"truncated"} and {"type":"history",
// "recovered":false} say that could not be done.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    status: $('status'), join: $('join'), name: $('name'), room: $('room'), server: $('server'),
    joinError: $('join-error'), chat: $('chat'), roomName: $('room-name'), me: $('me'),
    leave: $('leave'), members: $('members'), messages: $('messages'), typing: $('typing'),
    send: $('send'), text: $('text'),
  };
  const params = new URLSearchParams(location.search);
  // ?server=ws://host:port wins; else the page's own host and ?port= or ?ws= (default 8000).
  const port = params.get('port') || params.get('ws') || '8000';
  els.server.value = params.get('server') || `ws://${location.hostname || '127.0.0.1'}:${port}`;
  if (params.get('room')) els.room.value = params.get('room');
  if (params.get('name')) els.name.value = params.get('name');

  let ws = null;
  let me = '';
  let leaving = false;
  let position = ''; // the offset of the last room event seen (history envelope)
  let retryTimer = null;
  let retryDelay = 250;
  let lastTypingSent = 0;
  const pending = []; // my lines not yet seen coming back, in send order
  const typists = new Map(); // user -> timer that forgets them

  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
  }

  function addLine(kind, text, who) {
    const li = document.createElement('li');
    li.className = `msg ${kind}`;
    if (who !== undefined) {
      const w = document.createElement('span');
      w.className = 'who';
      w.textContent = who;
      li.appendChild(w);
    }
    const t = document.createElement('span');
    t.className = 'text';
    t.textContent = text; // always text, never HTML
    li.appendChild(t);
    const list = els.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(li);
    if (atBottom || kind.startsWith('mine')) list.scrollTop = list.scrollHeight;
    return li;
  }

  function showMembers(members) {
    if (!Array.isArray(members)) return;
    els.members.hidden = false;
    els.members.textContent = `${members.length} here: ${members.join(', ')}`;
  }

  function showTyping() {
    const names = [...typists.keys()];
    els.typing.textContent = names.length === 0 ? ''
      : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  function someoneTyping(user) {
    if (!user || user === me) return;
    clearTimeout(typists.get(user));
    typists.set(user, setTimeout(() => { typists.delete(user); showTyping(); }, 3000));
    showTyping();
  }

  function stoppedTyping(user) {
    clearTimeout(typists.get(user));
    if (typists.delete(user)) showTyping();
  }

  // Turn whatever the server sent (a string, or the data of an envelope) into
  // {kind, user, text, members}.
  function normalize(data) {
    if (data instanceof Blob || data instanceof ArrayBuffer) return { kind: 'system', text: '(binary message)' };
    let m = data;
    if (typeof data === 'string') {
      try {
        m = JSON.parse(data);
      } catch {
        return { kind: 'chat', user: '', text: data };
      }
    } else {
      data = JSON.stringify(data);
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return { kind: 'chat', user: '', text: data };
    const user = [m.user, m.from, m.name].find((v) => typeof v === 'string') || '';
    switch (m.type) {
      case 'error': {
        const e = m.error;
        const why = typeof e === 'string' ? e : (e && (e.message || e.code)) || m.message || data;
        return { kind: 'error', text: `server: ${why}` };
      }
      case 'join': case 'joined':
        return { kind: 'join', user, text: `${user} joined`, members: m.members };
      case 'leave': case 'left':
        return { kind: 'leave', user, text: `${user} left`, members: m.members };
      case 'typing':
        return { kind: 'typing', user };
      case 'truncated':
      case 'history':
        return { kind: 'system', text: 'Some earlier messages may be missing (the room could not be resumed).' };
      default: {
        const text = [m.text, m.echo, m.message].find((v) => typeof v === 'string');
        if (text === undefined) return { kind: 'system', text: data };
        return { kind: 'chat', user, text };
      }
    }
  }

  // A history envelope: remember its offset, show its data.
  function unwrap(data) {
    if (typeof data !== 'string' || !data.includes('"offset"')) return data;
    try {
      const m = JSON.parse(data);
      if (m && typeof m.offset === 'string' && typeof m.topic === 'string') {
        position = m.offset;
        return m.type === 'truncated' ? m : m.data;
      }
    } catch { /* not JSON: shown as it is */ }
    return data;
  }

  function onMessage(event) {
    const m = normalize(unwrap(event.data));
    if (m.members) showMembers(m.members);
    if (m.kind === 'typing') {
      someoneTyping(m.user);
      return;
    }
    if (m.kind === 'join') {
      if (m.user !== me) addLine('system', m.text); // our own join is already on screen
      return;
    }
    if (m.kind === 'leave') {
      stoppedTyping(m.user);
      addLine('system', m.text);
      return;
    }
    if (m.kind !== 'chat') {
      addLine(m.kind, m.text);
      return;
    }
    stoppedTyping(m.user);
    // My own line coming back confirms the one shown when it was sent.
    if (m.user === me && pending.length && pending[0].dataset.text === m.text) {
      pending.shift().classList.remove('pending');
      return;
    }
    if (m.user === me) addLine('mine', m.text, 'you');
    else addLine('theirs', m.text, m.user || 'someone');
  }

  function resetRoom() {
    pending.length = 0;
    position = '';
    clearTimeout(retryTimer);
    retryTimer = null;
    retryDelay = 250;
    for (const t of typists.values()) clearTimeout(t);
    typists.clear();
    showTyping();
    els.messages.replaceChildren();
    els.members.hidden = true;
    els.members.textContent = '';
  }

  function showJoin(error) {
    els.chat.hidden = true;
    els.join.hidden = false;
    els.joinError.textContent = error || '';
    els.name.focus();
  }

  function setSendEnabled(on) {
    els.text.disabled = !on;
    els.send.querySelector('button').disabled = !on;
  }

  function join(event) {
    event.preventDefault();
    const name = els.name.value.trim();
    const room = els.room.value.trim();
    if (!name || !room) return;
    let url;
    try {
      url = new URL(`${els.server.value.trim().replace(/\/+$/, '')}/chat/${encodeURIComponent(room)}`);
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('use ws:// or wss://');
    } catch (e) {
      els.joinError.textContent = `Bad server URL: ${e.message}`;
      return;
    }
    url.searchParams.set('user', name);
    me = name;
    leaving = false;
    resetRoom();
    els.roomName.textContent = room;
    els.me.textContent = name;
    els.joinError.textContent = '';
    setStatus('connecting', 'connecting…');
    connect(url, room, false);
  }

  // Open the room's socket; `again`: a reconnect after a drop, resuming from
  // the last offset seen.
  function connect(url, room, again) {
    retryTimer = null;
    if (position) url.searchParams.set('since', position);
    const sock = new WebSocket(url);
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      retryDelay = 250;
      setStatus('open', 'connected');
      setSendEnabled(true);
      if (again) {
        addLine('system', 'Reconnected.');
        return;
      }
      els.join.hidden = true;
      els.chat.hidden = false;
      addLine('system', `You joined ${room} as ${me}`);
      els.text.focus();
    };
    sock.onmessage = (e) => { if (ws === sock) onMessage(e); };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      setStatus('closed', 'not connected');
      if (leaving) return;
      if (!opened && !again) {
        showJoin(`Could not connect to ${url.origin}${url.pathname} (code ${e.code}).`);
        return;
      }
      setSendEnabled(false);
      if (opened) addLine('error', `Connection closed (code ${e.code}${e.reason ? `: ${e.reason}` : ''}). Reconnecting…`);
      setStatus('connecting', 'reconnecting…');
      retryTimer = setTimeout(() => connect(url, room, true), retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  }

  function send(event) {
    event.preventDefault();
    const text = els.text.value;
    if (!text.trim() || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'chat', user: me, text }));
    const li = addLine('mine pending', text, 'you');
    li.dataset.text = text;
    pending.push(li);
    els.text.value = '';
    lastTypingSent = 0;
    els.text.focus();
  }

  // Tell the room we are typing, at most every two seconds.
  function typing() {
    const now = Date.now();
    if (!ws || ws.readyState !== WebSocket.OPEN || !els.text.value || now - lastTypingSent < 2000) return;
    lastTypingSent = now;
    ws.send(JSON.stringify({ type: 'typing' }));
  }

  function leave() {
    leaving = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) ws.close(1000, 'left the room');
    ws = null;
    setStatus('idle', 'not connected');
    resetRoom();
    showJoin('');
  }

  els.join.addEventListener('submit', join);
  els.send.addEventListener('submit', send);
  els.text.addEventListener('input', typing);
  els.leave.addEventListener('click', leave);
  setStatus('idle', 'not connected');
})();
