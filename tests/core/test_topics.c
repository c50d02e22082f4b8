/*
 * test_topics.c -- topics (topics.c and the shared-frame path of send.c):
 * the hash table on its own, then subscribe / unsubscribe / publish through
 * real sockets on 127.0.0.1: order with direct sends, exclude, limits, the
 * end of subscriptions at close, slow subscribers, values encoded once per
 * codec, and 10,000 subscribers of one topic.
 */
#include "conn_internal.h"
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the hash table ---------------------------------------------------------- */

typedef struct node {
  wire__hnode h;
  uint32_t key;
} node;

static uint64_t key_hash(uint32_t k) {
  return wire__hash_bytes(42, &k, sizeof k);
}

static node *tab_find(const wire__htab *t, uint32_t k) {
  uint64_t h = key_hash(k);
  for (wire__hnode *n = wire__htab_chain(t, h); n; n = n->next)
    if (n->hash == h && ((node *)n)->key == k)
      return (node *)n;
  return NULL;
}

TestSuite(htab, .timeout = 60);

Test(htab, holds_100000_keys_through_growth_and_removal) {
  enum { N = 100000 };
  node *nodes = calloc(N, sizeof *nodes);
  wire__htab t = {0};
  for (uint32_t i = 0; i < N; i++) {
    cr_assert_eq(wire__htab_reserve(&t), 0);
    nodes[i].key = i;
    nodes[i].h.hash = key_hash(i);
    wire__htab_insert(&t, &nodes[i].h);
  }
  cr_assert_eq(t.n, N);
  cr_assert_geq(t.cap, N, "load factor above 1: cap %zu", t.cap);
  cr_assert_eq(t.cap & (t.cap - 1), 0);
  size_t longest = 0;
  for (size_t b = 0; b < t.cap; b++) {
    size_t len = 0;
    for (wire__hnode *n = t.b[b]; n; n = n->next)
      len++;
    if (len > longest)
      longest = len;
  }
  cr_assert_leq(longest, 16, "a chain of %zu: the hash spreads badly", longest);
  for (uint32_t i = 0; i < N; i++)
    cr_assert_eq(tab_find(&t, i), &nodes[i]);
  cr_assert_null(tab_find(&t, N + 1));
  for (uint32_t i = 0; i < N; i += 2)
    wire__htab_remove(&t, &nodes[i].h);
  cr_assert_eq(t.n, N / 2);
  for (uint32_t i = 0; i < N; i++)
    cr_assert_eq(tab_find(&t, i), i % 2 ? &nodes[i] : NULL);
  for (uint32_t i = 1; i < N - 16; i += 2)
    wire__htab_remove(&t, &nodes[i].h);
  cr_assert_eq(t.n, 8);
  cr_assert_leq(t.cap, 64, "the table did not shrink: cap %zu", t.cap);
  for (uint32_t i = N - 16; i < N; i++)
    cr_assert_eq(tab_find(&t, i), i % 2 ? &nodes[i] : NULL);
  for (uint32_t i = N - 15; i < N; i += 2)
    wire__htab_remove(&t, &nodes[i].h);
  cr_assert_eq(t.n, 0);
  cr_assert_eq(t.cap, 0, "an empty table keeps its buckets");
  cr_assert_null(t.b);
  free(nodes);
}

Test(htab, hash_depends_on_every_byte_and_on_the_seed) {
  const char *a = "room/alpha-0001", *b = "room/alpha-0002";
  cr_assert_eq(wire__hash_bytes(1, a, strlen(a)), wire__hash_bytes(1, a, strlen(a)));
  cr_assert_neq(wire__hash_bytes(1, a, strlen(a)), wire__hash_bytes(1, b, strlen(b)));
  cr_assert_neq(wire__hash_bytes(1, a, strlen(a)), wire__hash_bytes(2, a, strlen(a)));
  cr_assert_neq(wire__hash_bytes(1, a, 8), wire__hash_bytes(1, a, 9));
  cr_assert_neq(wire__hash_bytes(1, "", 0), wire__hash_bytes(1, "\0", 1));
}

/* ---- a server with a topic endpoint ------------------------------------------- */

/* /t/{room}: on_connect subscribes the connection to its room; the test
 * keeps a reference to the first connections it sees. */
typedef struct tp {
  wire_conn *conns[64];
  int n;
  int n_connect, n_close;
  int close_topics;     /* wire_conn_topic_count seen in on_close */
  int close_subscribed; /* wire_conn_is_subscribed(room) in on_close */
  int close_publish;    /* what a publish to the room returned in on_close */
  int close_resub;      /* wire_conn_subscribe in on_close */
  int order_hook;       /* on_message: send "1", publish "2", send "3" */
  int close_hook;       /* on_close: look at the topics, publish "left", subscribe */
  int last_publish;
} tp;

static fx F;
static tp T;

static int tp_connect(wire_conn *c, const wire_request *req, void *ud) {
  tp *t = ud;
  t->n_connect++;
  wire_str room = wire_request_param(req, "room");
  if (room.len > 0 && wire_conn_subscribe(c, room.ptr, room.len) != 0)
    return 500;
  if (t->n < 64) {
    wire_conn_ref(c);
    t->conns[t->n++] = c;
  }
  return 0;
}

static void tp_message(wire_conn *c, const wire_message *m, void *ud) {
  tp *t = ud;
  (void)m;
  if (!t->order_hook)
    return;
  wire_str room = wire_request_param(wire_conn_request(c), "room");
  wire_conn_send_text(c, "1", 1);
  t->last_publish =
      wire_server_publish(wire_conn_server(c), room.ptr, room.len, WIRE_MSG_TEXT, "2", 1, NULL);
  wire_conn_send_text(c, "3", 1);
}

static void tp_close(wire_conn *c, int code, const char *reason, size_t len, void *ud) {
  tp *t = ud;
  (void)code;
  (void)reason;
  (void)len;
  t->n_close++;
  if (!t->close_hook)
    return;
  wire_str room = wire_request_param(wire_conn_request(c), "room");
  t->close_topics = (int)wire_conn_topic_count(c);
  t->close_subscribed = wire_conn_is_subscribed(c, room.ptr, room.len);
  t->close_publish =
      wire_server_publish(wire_conn_server(c), room.ptr, room.len, WIRE_MSG_TEXT, "left", 4, NULL);
  t->close_resub = wire_conn_subscribe(c, "other", 5);
}

static const wire_callbacks tp_callbacks = {tp_connect, tp_message, tp_close, NULL};

static void setup(void) {
  memset(&F, 0, sizeof F);
  memset(&T, 0, sizeof T);
  /* Publishing to peers that just reset is the ordinary case here; the core
   * leaves SIGPIPE to the host program, as libuv does. */
  signal(SIGPIPE, SIG_IGN);
}

static void teardown(void) {
  for (int i = 0; i < T.n; i++)
    wire_conn_unref(T.conns[i]);
  T.n = 0;
  fx_stop(&F);
}

TestSuite(topics, .init = setup, .fini = teardown, .timeout = 60);

/* Start the fixture server plus /t/{room} (eo may be NULL). */
static void start(const wire_server_options *so, const wire_endpoint_options *eo) {
  fx_start(&F, so, NULL, "/fx");
  wire_error err;
  int r = wire_endpoint_add(F.server, "/t/{room}", eo, &tp_callbacks, &T, NULL, &err);
  cr_assert_eq(r, 0, "%s", err.message);
}

/* Another endpoint with the topic callbacks, e.g. with another codec. */
static void add_endpoint(const char *pattern, wire_codec codec) {
  wire_endpoint_options eo = {0};
  eo.codec = codec;
  cr_assert_eq(wire_endpoint_add(F.server, pattern, &eo, &tp_callbacks, &T, NULL, NULL), 0);
}

/* Open a client on path; *conn (may be NULL) gets the server's side. */
static int client(const char *path, wire_conn **conn) {
  int before = T.n;
  int fd = wt_open(&F.pump, F.port, path);
  cr_assert_geq(fd, 0, "handshake on %s failed", path);
  cr_assert_eq(T.n, before + 1);
  if (conn)
    *conn = T.conns[T.n - 1];
  return fd;
}

static void expect_frame(int fd, int opcode, const void *payload, size_t len) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no frame");
  cr_assert_eq(m.opcode, opcode, "opcode %d, expected %d", m.opcode, opcode);
  cr_assert_eq(m.len, len, "length %zu, expected %zu (%.*s)", m.len, len, (int)m.len, m.data);
  cr_assert_eq(memcmp(m.data, payload, len), 0, "got %.*s", (int)m.len, m.data);
  wt_msg_free(&m);
}

static void expect_text(int fd, const char *s) {
  expect_frame(fd, 0x1, s, strlen(s));
}

static int publish(const char *topic, const char *text, wire_conn *exclude) {
  return wire_server_publish(F.server, topic, strlen(topic), WIRE_MSG_TEXT, text, strlen(text),
                             exclude);
}

Test(topics, publish_reaches_every_subscriber_and_returns_their_number) {
  start(NULL, NULL);
  int a = client("/t/lobby", NULL), b = client("/t/lobby", NULL), c = client("/t/other", NULL);
  cr_assert_eq(wire_server_subscriber_count(F.server, "lobby", 5), 2);
  cr_assert_eq(wire_server_topic_count(F.server), 2);
  cr_assert_eq(publish("lobby", "hello", NULL), 2);
  cr_assert_eq(wire_server_publish(F.server, "lobby", 5, WIRE_MSG_BINARY, "\x00\xff", 2, NULL), 2);
  expect_text(a, "hello");
  expect_frame(a, 0x2, "\x00\xff", 2);
  expect_text(b, "hello");
  expect_frame(b, 0x2, "\x00\xff", 2);
  cr_assert_eq(publish("other", "just you", NULL), 1);
  expect_text(c, "just you");
  close(a);
  close(b);
  close(c);
}

Test(topics, publishing_to_a_topic_without_subscribers_returns_0) {
  start(NULL, NULL);
  cr_assert_eq(publish("nobody", "x", NULL), 0);
  int fd = wt_open(&F.pump, F.port, "/fx"); /* an open connection that subscribed to nothing */
  cr_assert_geq(fd, 0);
  cr_assert_eq(publish("nobody", "x", NULL), 0);
  wire_value v = {0};
  v.type = WIRE_NULL;
  cr_assert_eq(wire_server_publish_value(F.server, "nobody", 6, &v, NULL, NULL), 0);
  cr_assert_eq(wire_server_subscriber_count(F.server, "nobody", 6), 0);
  cr_assert_eq(wire_server_topic_count(F.server), 0);
  cr_assert_eq(F.conn->topics, NULL, "a connection without topics pays only a NULL pointer");
  close(fd);
}

Test(topics, bad_topics_and_arguments_get_clear_errors) {
  wire_server_options so = {0};
  so.max_topics_per_conn = 3;
  start(&so, NULL);
  wire_conn *c;
  int fd = client("/t/a", &c);
  char big[WIRE_MAX_TOPIC_LENGTH + 1];
  memset(big, 'x', sizeof big);
  cr_assert_eq(wire_conn_subscribe(c, "", 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_subscribe(c, NULL, 3), WIRE_EINVAL);
  cr_assert_eq(wire_conn_subscribe(NULL, "a", 1), WIRE_EINVAL);
  cr_assert_eq(wire_conn_subscribe(c, big, sizeof big), WIRE_EINVAL);
  cr_assert_eq(wire_conn_subscribe(c, big, WIRE_MAX_TOPIC_LENGTH), 0);
  cr_assert_eq(publish("", "x", NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_publish(F.server, big, sizeof big, WIRE_MSG_TEXT, "x", 1, NULL),
               WIRE_EINVAL);
  cr_assert_eq(wire_server_publish(F.server, "a", 1, (wire_msg_kind)7, "x", 1, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_publish(F.server, "a", 1, WIRE_MSG_TEXT, NULL, 1, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_publish(F.server, "a", 1, WIRE_MSG_TEXT, "\xc3\x28", 2, NULL),
               WIRE_EUTF8);
  cr_assert_eq(wire_server_publish(NULL, "a", 1, WIRE_MSG_TEXT, "x", 1, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_server_publish_value(F.server, "a", 1, NULL, NULL, NULL), WIRE_EINVAL);
  cr_assert_eq(wire_conn_unsubscribe(c, NULL, 0), WIRE_EINVAL);
  cr_assert_eq(wire_conn_unsubscribe(c, "zzz", 3), WIRE_ENOTFOUND);
  /* the per-connection limit: "a", the long one, then one more */
  cr_assert_eq(wire_conn_subscribe(c, "b", 1), 0);
  cr_assert_eq(wire_conn_subscribe(c, "c", 1), WIRE_ETOOMANY);
  cr_assert_str_eq(wire_err_name(WIRE_ETOOMANY), "ETOOMANY");
  cr_assert_eq(wire_conn_subscribe(c, "b", 1), 0, "subscribing twice is one subscription");
  cr_assert_eq(wire_conn_topic_count(c), 3);
  cr_assert_eq(wire_conn_unsubscribe(c, "b", 1), 0);
  cr_assert_eq(wire_conn_subscribe(c, "c", 1), 0);
  cr_assert_eq(publish("a", "still here", NULL), 1, "nothing was sent for the refused calls");
  expect_text(fd, "still here");
  close(fd);
}

Test(topics, publishes_and_direct_sends_keep_their_order) {
  start(NULL, NULL);
  wire_conn *a;
  int fa = client("/t/r", &a), fb = client("/t/r", NULL);
  /* from host code: each call is written at once, in order */
  cr_assert_eq(wire_conn_send_text(a, "a", 1), 0);
  cr_assert_eq(publish("r", "b", NULL), 2);
  cr_assert_eq(wire_conn_send_text(a, "c", 1), 0);
  cr_assert_eq(publish("r", "d", NULL), 2);
  expect_text(fa, "a");
  expect_text(fa, "b");
  expect_text(fa, "c");
  expect_text(fa, "d");
  expect_text(fb, "b");
  expect_text(fb, "d");
  /* from a callback: queued together, still in order */
  T.order_hook = 1;
  wt_send_frame(&F.pump, fa, 1, 0x1, "go", 2);
  expect_text(fa, "1");
  expect_text(fa, "2");
  expect_text(fa, "3");
  expect_text(fb, "2");
  cr_assert_eq(T.last_publish, 2);
  close(fa);
  close(fb);
}

Test(topics, one_frame_is_shared_by_every_subscriber_queue) {
  start(NULL, NULL);
  enum { N = 5 };
  int fd[N];
  wire_conn *c[N];
  for (int i = 0; i < N; i++)
    fd[i] = client("/t/s", &c[i]);
  wire__enter(F.server); /* as inside a callback: output waits for the leave */
  cr_assert_eq(publish("s", "shared", NULL), N);
  wire__sbuf *b = c[0]->out_head->shared;
  cr_assert_not_null(b, "a publish queues a reference, not a copy");
  for (int i = 0; i < N; i++) {
    cr_assert_eq(c[i]->out_head->shared, b);
    cr_assert_eq(wire_conn_buffered_amount(c[i]), 2 + 6);
  }
  cr_assert_eq(b->refs, N, "one reference per queue, none left to the publisher");
  wire__leave(F.server);
  for (int i = 0; i < N; i++) {
    expect_text(fd[i], "shared");
    cr_assert_eq(wire_conn_buffered_amount(c[i]), 0);
    close(fd[i]);
  }
}

Test(topics, exclude_skips_one_connection) {
  start(NULL, NULL);
  wire_conn *a;
  int fa = client("/t/x", &a), fb = client("/t/x", NULL);
  cr_assert_eq(publish("x", "not for a", a), 1);
  cr_assert_eq(wire_conn_send_text(a, "direct", 6), 0);
  expect_text(fa, "direct"); /* nothing published came before it */
  expect_text(fb, "not for a");
  close(fa);
  close(fb);
}

Test(topics, unsubscribe_stops_delivery_and_lists_follow) {
  start(NULL, NULL);
  wire_conn *a;
  int fa = client("/t/one", &a), fb = client("/t/one", NULL);
  cr_assert_eq(wire_conn_subscribe(a, "two", 3), 0);
  cr_assert_eq(wire_conn_subscribe(a, "three", 5), 0);
  cr_assert_eq(wire_conn_topic_count(a), 3);
  int seen = 0;
  for (size_t i = 0; i < 3; i++) {
    wire_str t = wire_conn_topic_at(a, i);
    cr_assert_not_null(t.ptr);
    cr_assert_eq(t.ptr[t.len], 0);
    seen |= (t.len == 3 && !memcmp(t.ptr, "one", 3))     ? 1
            : (t.len == 3 && !memcmp(t.ptr, "two", 3))   ? 2
            : (t.len == 5 && !memcmp(t.ptr, "three", 5)) ? 4
                                                         : 8;
  }
  cr_assert_eq(seen, 7);
  cr_assert_null(wire_conn_topic_at(a, 3).ptr);
  cr_assert_eq(wire_conn_unsubscribe(a, "one", 3), 0);
  cr_assert_eq(wire_conn_unsubscribe(a, "one", 3), WIRE_ENOTFOUND);
  cr_assert_eq(wire_conn_is_subscribed(a, "one", 3), 0);
  cr_assert_eq(wire_conn_is_subscribed(a, "two", 3), 1);
  cr_assert_eq(wire_conn_topic_count(a), 2);
  cr_assert_eq(publish("one", "b only", NULL), 1);
  cr_assert_eq(publish("two", "a only", NULL), 1);
  expect_text(fa, "a only");
  expect_text(fb, "b only");
  cr_assert_eq(wire_conn_unsubscribe(a, "two", 3), 0);
  cr_assert_eq(wire_conn_unsubscribe(a, "three", 5), 0);
  cr_assert_eq(wire_conn_topic_count(a), 0);
  cr_assert_null(a->topics, "the last unsubscribe frees the connection's array");
  cr_assert_eq(wire_server_topic_count(F.server), 1, "empty topics are gone");
  close(fa);
  close(fb);
}

Test(topics, subscriptions_end_with_the_connection_after_on_close) {
  start(NULL, NULL);
  wire_conn *a;
  int fa = client("/t/room", &a), fb = client("/t/room", NULL);
  cr_assert_eq(wire_conn_subscribe(a, "second", 6), 0);
  T.close_hook = 1;
  wt_send_frame(&F.pump, fa, 1, 0x8, "\x03\xe8", 2); /* close 1000 */
  FX_PUMP_UNTIL(&F, T.n_close == 1);
  cr_assert_eq(T.n_close, 1);
  cr_assert_eq(T.close_topics, 2, "topics are listed during on_close");
  cr_assert_eq(T.close_subscribed, 1);
  cr_assert_eq(T.close_publish, 1,
               "a publish from on_close reaches the others, not the closing one");
  cr_assert_eq(T.close_resub, WIRE_ECLOSED);
  expect_text(fb, "left");
  cr_assert_eq(wire_conn_topic_count(a), 0, "gone once on_close returned");
  cr_assert_eq(wire_conn_is_subscribed(a, "room", 4), 0);
  cr_assert_eq(wire_conn_subscribe(a, "room", 4), WIRE_ECLOSED);
  cr_assert_eq(wire_conn_unsubscribe(a, "room", 4), WIRE_ENOTFOUND);
  cr_assert_eq(wire_server_subscriber_count(F.server, "room", 4), 1);
  cr_assert_eq(wire_server_subscriber_count(F.server, "second", 6), 0);
  cr_assert_eq(wire_server_topic_count(F.server), 1);
  cr_assert_eq(publish("room", "after", NULL), 1);
  expect_text(fb, "after");
  close(fa);
  close(fb);
}

/* The topic struct of a name, found through the server's table. */
static wire__topic *find_topic(const char *name) {
  wire__htab *t = &F.server->topics.names;
  for (size_t i = 0; i < t->cap; i++)
    for (wire__hnode *n = t->b[i]; n; n = n->next)
      if (strcmp(((wire__topic *)n)->name, name) == 0)
        return (wire__topic *)n;
  return NULL;
}

static size_t linked(const wire__topic *t) {
  size_t n = 0;
  for (const wire__sub *s = t->head; s; s = s->next)
    n++;
  return n;
}

Test(topics, subscriptions_removed_while_a_publish_walks_the_topic_are_freed_after_it) {
  start(NULL, NULL);
  wire_conn *a, *b;
  int fa = client("/t/w", &a), fb = client("/t/w", &b), fc = client("/t/w", NULL);
  wire__topic *t = find_topic("w");
  cr_assert_not_null(t);
  t->busy = 1; /* as when user code runs from inside a publish to w */
  cr_assert_eq(wire_conn_unsubscribe(a, "w", 1), 0);
  close(fb); /* b closes: its subscription goes at on_close */
  FX_PUMP_UNTIL(&F, T.n_close == 1);
  cr_assert_eq(T.n_close, 1);
  cr_assert_eq(wire_server_subscriber_count(F.server, "w", 1), 1);
  cr_assert_eq(wire_conn_is_subscribed(a, "w", 1), 0);
  cr_assert_eq(linked(t), 3, "removed subscriptions stay linked while the walk goes on");
  cr_assert_eq(t->dead, 2);
  cr_assert_eq(publish("w", "c only", NULL), 1, "a nested publish steps over them");
  cr_assert_eq(linked(t), 3, "only the outermost walk frees them");
  t->busy = 0; /* that walk ended; the next publish's walk is the last one */
  cr_assert_eq(publish("w", "still c", NULL), 1);
  cr_assert_eq(linked(t), 1);
  cr_assert_eq(t->dead, 0);
  expect_text(fc, "c only");
  expect_text(fc, "still c");
  cr_assert_eq(wire_conn_send_text(a, "direct", 6), 0);
  expect_text(fa, "direct"); /* a got nothing published after it left */
  close(fa);
  close(fc);
}

Test(topics, a_closing_connection_receives_nothing_more) {
  start(NULL, NULL);
  wire_conn *a;
  int fa = client("/t/c", &a), fb = client("/t/c", NULL);
  cr_assert_eq(wire_conn_close(a, 1000, NULL, 0), 0);
  cr_assert_eq(publish("c", "only b", NULL), 1);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fa, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x8, "a closing connection got opcode %d", m.opcode);
  wt_msg_free(&m);
  expect_text(fb, "only b");
  close(fa);
  close(fb);
}

Test(topics, a_dropped_connection_leaves_every_topic) {
  start(NULL, NULL);
  int fd[10];
  for (int i = 0; i < 10; i++) {
    wire_conn *c;
    fd[i] = client("/t/drop", &c);
    for (int k = 0; k < 20; k++) {
      char name[16];
      snprintf(name, sizeof name, "t%d", k);
      cr_assert_eq(wire_conn_subscribe(c, name, strlen(name)), 0);
    }
  }
  cr_assert_eq(wire_server_topic_count(F.server), 21);
  for (int i = 0; i < 10; i++)
    close(fd[i]); /* no close frame: the server sees EOF (1006) */
  FX_PUMP_UNTIL(&F, T.n_close == 10);
  cr_assert_eq(T.n_close, 10);
  cr_assert_eq(wire_server_topic_count(F.server), 0);
  cr_assert_eq(F.server->topics.subs.n, 0);
  cr_assert_eq(publish("t3", "x", NULL), 0);
}

Test(topics, a_subscriber_that_never_reads_is_bounded_and_the_others_get_everything) {
  enum { LIMIT = 64 * 1024, MSG = 8 * 1024, COUNT = 256 };
  wire_endpoint_options eo = {0};
  eo.max_backpressure = LIMIT;
  start(NULL, &eo);
  wire_conn *slow;
  int small = 4096;
  int fs = wt_connect(F.port);
  cr_assert_geq(fs, 0);
  setsockopt(fs, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  cr_assert_eq(wt_handshake(&F.pump, fs, "/t/feed", NULL), 101);
  slow = T.conns[T.n - 1];
  int sfd = -1;
  cr_assert_eq(uv_fileno((uv_handle_t *)&slow->poll, &sfd), 0);
  setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small); /* keep the kernel's share small */
  int f1 = client("/t/feed", NULL), f2 = client("/t/feed", NULL);
  static char payload[MSG];
  memset(payload, 'p', sizeof payload);
  int delivered = 0;
  for (int i = 0; i < COUNT; i++) {
    snprintf(payload, 16, "%08d", i);
    int r = wire_server_publish(F.server, "feed", 4, WIRE_MSG_BINARY, payload, MSG, NULL);
    cr_assert_geq(r, 2, "the readers always get it (publish %d returned %d)", i, r);
    delivered += r;
    cr_assert_leq(wire_conn_buffered_amount(slow), LIMIT + MSG + 4 + 64,
                  "the slow subscriber holds %zu bytes", wire_conn_buffered_amount(slow));
    if (i % 8 == 7)
      for (int k = i - 7; k <= i; k++) {
        snprintf(payload, 16, "%08d", k);
        expect_frame(f1, 0x2, payload, MSG);
        expect_frame(f2, 0x2, payload, MSG);
      }
  }
  cr_assert_neq(slow->state, WIRE__S_OPEN, "the slow subscriber was not closed");
  /* The one refused delivery closed it; later publishes skip a closing
   * connection, so nothing else is counted. */
  cr_assert_eq(wire_server_publish_drops(F.server), 1);
  int to_slow = delivered - 2 * COUNT;
  cr_assert_geq(to_slow, LIMIT / (MSG + 4), "closed before its limit (%d deliveries)", to_slow);
  cr_assert_lt(to_slow, COUNT);
  close(fs);
  close(f1);
  close(f2);
}

/* ---- values: encoded once per codec in use ---------------------------------- */

static const wire_value *sample_value(wire_doc *d, int with_binary) {
  wire_value *obj = wire_new_object(d, 3);
  wire_object_set(d, obj, "n", 1, wire_new_int(d, 1));
  wire_object_set(d, obj, "s", 1, wire_new_string(d, "x", 1));
  if (with_binary)
    wire_object_set(d, obj, "b", 1, wire_new_binary(d, "\x01", 1));
  return obj;
}

Test(topics, publish_value_sends_each_codec_its_encoding_made_once) {
  start(NULL, NULL);
  add_endpoint("/json/{room}", WIRE_CODEC_JSON);
  add_endpoint("/mp/{room}", WIRE_CODEC_MSGPACK);
  int raw = client("/t/v", NULL);
  int j1 = client("/json/v", NULL), j2 = client("/json/v", NULL);
  int m1 = client("/mp/v", NULL), m2 = client("/mp/v", NULL);
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  const wire_value *v = sample_value(d, 0);
  const uint8_t *mp;
  size_t mp_len;
  cr_assert_eq(wire_encode(d, WIRE_CODEC_MSGPACK, v, &mp, &mp_len, NULL), 0);
  uint64_t before = F.server->topics.encodes;
  wire_error err;
  cr_assert_eq(wire_server_publish_value(F.server, "v", 1, v, NULL, &err), 5);
  cr_assert_eq(F.server->topics.encodes - before, 2, "one JSON and one MessagePack encoding");
  const char *json = "{\"n\":1,\"s\":\"x\"}";
  expect_text(j1, json);
  expect_text(j2, json);
  expect_text(raw, json); /* RAW endpoints get the JSON text */
  expect_frame(m1, 0x2, mp, mp_len);
  expect_frame(m2, 0x2, mp, mp_len);

  /* a value JSON cannot carry: nothing goes anywhere, not even to MessagePack */
  const wire_value *bin = sample_value(d, 1);
  err.code = 0;
  cr_assert_eq(wire_server_publish_value(F.server, "v", 1, bin, NULL, &err), WIRE_ESERIALIZE);
  cr_assert_eq(err.code, WIRE_ESERIALIZE);
  cr_assert_eq(publish("v", "next", NULL), 5);
  expect_text(m1, "next");
  expect_text(j1, "next");

  /* only MessagePack subscribers: one encoding, and binary values are fine */
  wire_conn *mc;
  int m3 = client("/mp/bin", &mc);
  before = F.server->topics.encodes;
  cr_assert_eq(wire_server_publish_value(F.server, "bin", 3, bin, NULL, NULL), 1);
  cr_assert_eq(F.server->topics.encodes - before, 1);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, m3, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x2);
  const wire_value *back;
  cr_assert_eq(wire_decode(d, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &back, NULL), 0);
  cr_assert_eq(wire_value_size(back), 3);
  wt_msg_free(&m);
  /* excluded: the only subscriber, so nothing is encoded at all is not
   * promised, but nothing is sent */
  cr_assert_eq(wire_server_publish_value(F.server, "bin", 3, bin, mc, NULL), 0);
  wire_doc_free(d);
  int fds[] = {raw, j1, j2, m1, m2, m3};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    close(fds[i]);
}

/* encode for own endpoints: "own:<pattern>" as text (binary for "/ownb"),
 * counting its calls; fails with `fail` when set. */
typedef struct own_enc {
  int calls;
  int fail;
  char buf[64];
} own_enc;

static int own_encode(void *ud, const wire_endpoint *ep, wire_msg_kind *kind, const void **data,
                      size_t *len) {
  own_enc *e = ud;
  e->calls++;
  if (e->fail)
    return e->fail;
  const char *pattern = wire_endpoint_pattern(ep);
  int n = snprintf(e->buf, sizeof e->buf, "own:%s", pattern);
  *kind = strncmp(pattern, "/ownb", 5) == 0 ? WIRE_MSG_BINARY : WIRE_MSG_TEXT;
  *data = e->buf;
  *len = (size_t)n;
  return 0;
}

static wire_endpoint *add_own(const char *pattern) {
  wire_endpoint *ep = NULL;
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_RAW;
  cr_assert_eq(wire_endpoint_add(F.server, pattern, &eo, &tp_callbacks, &T, &ep, NULL), 0);
  return ep;
}

Test(topics, publish_value_ex_encodes_once_per_own_endpoint_with_receivers) {
  start(NULL, NULL);
  add_endpoint("/mp/{room}", WIRE_CODEC_MSGPACK);
  const wire_endpoint *own[3] = {add_own("/own/{room}"), add_own("/ownb/{room}"),
                                 add_own("/idle/{room}")};
  int raw = client("/t/v", NULL);
  int mp = client("/mp/v", NULL);
  int o1 = client("/own/v", NULL), o2 = client("/own/v", NULL);
  wire_conn *bc;
  int b1 = client("/ownb/v", &bc);
  wire_doc *d;
  cr_assert_eq(wire_doc_new(&d), 0);
  const wire_value *v = sample_value(d, 0);
  own_enc e = {0};
  uint64_t before = F.server->topics.encodes;
  wire_error err;
  cr_assert_eq(
      wire_server_publish_value_ex(F.server, "v", 1, v, NULL, own, 3, own_encode, &e, &err), 5,
      "%s", err.message);
  cr_assert_eq(e.calls, 2, "once per own endpoint that has subscribers");
  cr_assert_eq(F.server->topics.encodes - before, 2, "JSON for /t, MessagePack for /mp");
  expect_text(raw, "{\"n\":1,\"s\":\"x\"}");
  expect_text(o1, "own:/own/{room}");
  expect_text(o2, "own:/own/{room}");
  expect_frame(b1, 0x2, "own:/ownb/{room}", 16);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, mp, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x2);
  wt_msg_free(&m);

  /* only own subscribers left for this publish: no codec encoding at all */
  e.calls = 0;
  before = F.server->topics.encodes;
  cr_assert_eq(
      wire_server_publish_value_ex(F.server, "v", 1, v, bc, own + 1, 1, own_encode, &e, NULL), 4);
  cr_assert_eq(e.calls, 0, "/ownb's only subscriber is excluded");
  cr_assert_eq(F.server->topics.encodes - before, 2);
  expect_text(o1, "{\"n\":1,\"s\":\"x\"}"); /* not in `own` this time: the JSON text */
  expect_text(o2, "{\"n\":1,\"s\":\"x\"}");
  expect_text(raw, "{\"n\":1,\"s\":\"x\"}");
  cr_assert_eq(wt_read_frame(&F.pump, mp, &m, 3000), 0);
  wt_msg_free(&m);

  /* encode fails: nothing is sent, its code comes back */
  e.fail = WIRE_ESERIALIZE;
  cr_assert_eq(
      wire_server_publish_value_ex(F.server, "v", 1, v, NULL, own, 3, own_encode, &e, NULL),
      WIRE_ESERIALIZE);
  cr_assert_eq(publish("v", "next", NULL), 5);
  expect_text(raw, "next");
  expect_text(o2, "next");
  expect_text(b1, "next");

  /* bad arguments */
  cr_assert_eq(
      wire_server_publish_value_ex(F.server, "v", 1, v, NULL, NULL, 1, own_encode, &e, NULL),
      WIRE_EINVAL);
  cr_assert_eq(wire_server_publish_value_ex(F.server, "v", 1, v, NULL, own, 1, NULL, &e, NULL),
               WIRE_EINVAL);
  cr_assert_eq(wire_server_publish_value_ex(F.server, "v", 1, v, NULL, own,
                                            WIRE_MAX_OWN_ENDPOINTS + 1, own_encode, &e, NULL),
               WIRE_EINVAL);
  wire_doc_free(d);
  int fds[] = {raw, mp, o1, o2, b1};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    close(fds[i]);
}

/* ---- 10,000 subscribers ------------------------------------------------------- */

enum { FAN_N = 10000, FAN_MSGS = 10, FAN_LEN = 8 };

/* The client side, in a child process (10,000 sockets on each side would pass
 * the descriptor limit of one process): open every connection, say 'R', then
 * read every published message of every connection and report how many
 * connections got them all, in order. */
static void fan_clients(int port, int wfd) {
  static int fds[FAN_N];
  const char *req = "GET /t/big HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n";
  struct timeval tv = {30, 0};
  for (int i = 0; i < FAN_N; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
        send(fds[i], req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
      _exit(2);
    char head[1024];
    size_t len = 0;
    while (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0) {
      ssize_t n = recv(fds[i], head + len, sizeof head - len, 0);
      if (n <= 0 || (len += (size_t)n) == sizeof head)
        _exit(3);
    }
    if (memcmp(head, "HTTP/1.1 101", 12) != 0)
      _exit(4);
  }
  if (write(wfd, "R", 1) != 1)
    _exit(5);
  int ok = 0;
  for (int i = 0; i < FAN_N; i++) {
    uint8_t buf[FAN_MSGS * (2 + FAN_LEN)];
    if (recv(fds[i], buf, sizeof buf, MSG_WAITALL) != (ssize_t)sizeof buf)
      continue;
    int good = 1;
    for (int k = 0; k < FAN_MSGS; k++) {
      char want[FAN_LEN + 1];
      snprintf(want, sizeof want, "msg%05d", k);
      const uint8_t *f = buf + k * (2 + FAN_LEN);
      good &= f[0] == 0x81 && f[1] == FAN_LEN && memcmp(f + 2, want, FAN_LEN) == 0;
    }
    ok += good;
  }
  if (write(wfd, &ok, sizeof ok) != sizeof ok)
    _exit(6);
  _exit(0);
}

/* Read exactly len bytes from a non-blocking pipe, pumping the server. */
static int pipe_read(int fd, void *buf, size_t len, int ms) {
  size_t got = 0;
  uint64_t end = wt_now_ms() + (uint64_t)ms;
  while (got < len && wt_now_ms() < end) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n > 0)
      got += (size_t)n;
    else if (n == 0)
      break;
    else
      wt_pump_once(&F.pump, 5);
  }
  return got == len;
}

Test(topics, ten_thousand_subscribers_of_one_topic_each_get_every_message, .timeout = 240) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  cr_assert_geq(rl.rlim_cur, FAN_N + 64, "RLIMIT_NOFILE %lu is too low for %d connections",
                (unsigned long)rl.rlim_cur, FAN_N);
  start(NULL, NULL);
  int p[2];
  cr_assert_eq(pipe(p), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(p[0]);
    fan_clients(F.port, p[1]);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  char ready = 0;
  cr_assert(pipe_read(p[0], &ready, 1, 180000), "the clients did not connect");
  FX_PUMP_UNTIL(&F, wire_server_subscriber_count(F.server, "big", 3) == FAN_N);
  cr_assert_eq(wire_server_subscriber_count(F.server, "big", 3), FAN_N);
  uint64_t t0 = wt_now_ms();
  for (int k = 0; k < FAN_MSGS; k++) {
    char msg[FAN_LEN + 1];
    snprintf(msg, sizeof msg, "msg%05d", k);
    cr_assert_eq(publish("big", msg, NULL), FAN_N);
  }
  cr_log_info("%d publishes to %d subscribers: %llu ms", FAN_MSGS, FAN_N,
              (unsigned long long)(wt_now_ms() - t0));
  int ok = -1;
  cr_assert(pipe_read(p[0], &ok, sizeof ok, 180000), "the clients did not report");
  int status = 0;
  waitpid(pid, &status, 0);
  close(p[0]);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client process status %d", status);
  cr_assert_eq(ok, FAN_N, "only %d of %d subscribers got every message in order", ok, FAN_N);
  /* the clients are gone: so are their subscriptions */
  uint64_t end = wt_now_ms() + 60000;
  while (T.n_close < FAN_N && wt_now_ms() < end)
    wt_pump_once(&F.pump, 5);
  cr_assert_eq(T.n_close, FAN_N);
  cr_assert_eq(wire_server_topic_count(F.server), 0);
}
