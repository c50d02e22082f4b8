// The chat page's behaviour: join a room over the browser's WebSocket, show
// what the room says, send what the user types, leave. Plain JS, no build step.
//
// Protocol (see README.md): connect to <server>/chat/<room>?user=<name>, send
// {"type":"chat","user":name,"text":text}; everything the server sends is shown.
// Chat lines may name the author in "user" or "from" and carry the text in
// "text" or "echo"; {"type":"join"|"leave","user":...} become notices and
// {"type":"error",...} an error line. Anything that is not JSON is shown as is.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const els = {
    status: $('status'), join: $('join'), name: $('name'), room: $('room'), server: $('server'),
    joinError: $('join-error'), chat: $('chat'), roomName: $('room-name'), me: $('me'),
    leave: $('leave'), messages: $('messages'), send: $('send'), text: $('text'),
  };
  const params = new URLSearchParams(location.search);
  // ?server=ws://host:port wins; else the page's own host with ?port= (default 8000).
  const defaultServer = `ws://${location.hostname || '127.0.0.1'}:${params.get('port') || 8000}`;
  els.server.value = params.get('server') || defaultServer;
  if (params.get('room')) els.room.value = params.get('room');
  if (params.get('name')) els.name.value = params.get('name');

  let ws = null;
  let me = '';
  let leaving = false;
  const pending = []; // my texts not yet seen coming back: <li> elements in send order

  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
  }

  function addLine(kind, text, who) {
    const li = document.createElement('li');
    li.className = `msg ${kind}`;
    li.dataset.kind = kind;
    if (who !== undefined) {
      const w = document.createElement('span');
      w.className = 'who';
      w.textContent = who;
      li.appendChild(w);
    }
    const t = document.createElement('span');
    t.className = 'text';
    t.textContent = text;
    li.appendChild(t);
    const atBottom = els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 40;
    els.messages.appendChild(li);
    if (atBottom || kind === 'mine') els.messages.scrollTop = els.messages.scrollHeight;
    return li;
  }

  // Turn whatever the server sent into {kind, user, text}.
  function normalize(data) {
    if (typeof data !== 'string') return { kind: 'system', text: '(binary message)' };
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return { kind: 'chat', user: '', text: data };
    }
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return { kind: 'chat', user: '', text: data };
    const user = [m.user, m.from, m.name].find((v) => typeof v === 'string') || '';
    if (m.type === 'error') {
      const e = m.error;
      const why = typeof e === 'string' ? e : (e && (e.message || e.code)) || m.message || data;
      return { kind: 'error', text: `server: ${why}` };
    }
    if (m.type === 'join' || m.type === 'joined') return { kind: 'system', text: `${user} joined` };
    if (m.type === 'leave' || m.type === 'left') return { kind: 'system', text: `${user} left` };
    const text = [m.text, m.echo, m.message].find((v) => typeof v === 'string');
    if (text === undefined) return { kind: 'system', text: data };
    return { kind: 'chat', user, text };
  }

  function onMessage(event) {
    const m = normalize(event.data);
    if (m.kind !== 'chat') {
      addLine(m.kind, m.text);
      return;
    }
    // My own line coming back confirms the one shown when it was sent.
    if (m.user === me && pending.length && pending[0].dataset.text === m.text) {
      pending.shift().classList.remove('pending');
      return;
    }
    if (m.user === me) addLine('mine', m.text, 'you');
    else addLine('theirs', m.text, m.user || 'someone');
  }

  function showJoin(error) {
    els.chat.hidden = true;
    els.join.hidden = false;
    els.joinError.textContent = error || '';
    els.name.focus();
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
    pending.length = 0;
    els.messages.replaceChildren();
    els.roomName.textContent = room;
    els.me.textContent = name;
    els.joinError.textContent = '';
    setStatus('connecting', 'connecting…');
    const sock = new WebSocket(url);
    ws = sock;
    let opened = false;
    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      setStatus('open', 'connected');
      els.join.hidden = true;
      els.chat.hidden = false;
      els.text.disabled = false;
      els.send.querySelector('button').disabled = false;
      addLine('system', `You joined ${room} as ${name}`);
      els.text.focus();
    };
    sock.onmessage = (e) => { if (ws === sock) onMessage(e); };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      setStatus('closed', 'not connected');
      if (leaving) return;
      if (!opened) {
        showJoin(`Could not connect to ${url.origin}${url.pathname} (code ${e.code}).`);
        return;
      }
      addLine('error', `Connection closed (code ${e.code}${e.reason ? `: ${e.reason}` : ''}).`);
      els.text.disabled = true;
      els.send.querySelector('button').disabled = true;
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
    els.text.focus();
  }

  function leave() {
    leaving = true;
    if (ws) ws.close(1000, 'left the room');
    ws = null;
    setStatus('idle', 'not connected');
    showJoin('');
  }

  els.join.addEventListener('submit', join);
  els.send.addEventListener('submit', send);
  els.leave.addEventListener('click', leave);
  setStatus('idle', 'not connected');
})();
