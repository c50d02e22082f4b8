/*
 * test_batch_hook.c -- wire_server_set_batch_hook (loop.c): the host is told
 * when the outermost of the server's callbacks begins and ends; every
 * on_message of one read falls inside one batch; output queued at the end
 * of a batch goes out with the batch's own; NULL turns the hook off.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

TestSuite(batch_hook, .timeout = 30);

typedef struct batches {
  int begins, ends, open; /* open: inside a batch now */
  int nested;             /* a begin inside a batch, or an end outside one */
  int batch_of[8];        /* the batch number of each message */
  int n_msgs;
  wire_conn *reply_to;  /* the end of a batch sends "end" here, once */
  size_t queued_at_end; /* bytes reply_to had queued then */
} batches;

static batches B;

static void on_batch(wire_server *s, int begin, void *ud) {
  batches *b = ud;
  cr_assert_eq(b, &B);
  if (begin) {
    b->nested += b->open;
    b->open = 1;
    b->begins++;
    return;
  }
  b->nested += !b->open;
  b->open = 0;
  b->ends++;
  if (b->reply_to) {
    wire_conn *c = b->reply_to;
    b->reply_to = NULL;
    b->queued_at_end = wire_conn_buffered_amount(c);
    cr_assert_eq(wire_conn_send_text(c, "end", 3), 0);
  }
}

/* Records which batch each message came in, then echoes it. */
static void record(fx *f, wire_conn *c, const wire_message *m) {
  cr_assert(B.open, "on_message outside a batch");
  if (B.n_msgs < 8)
    B.batch_of[B.n_msgs++] = B.begins;
  wire_conn_send_text(c, (const char *)m->data, m->len);
  if (m->len == 4 && memcmp(m->data, "last", 4) == 0)
    B.reply_to = c;
}

static void start(fx *f) {
  memset(&B, 0, sizeof B);
  memset(f, 0, sizeof *f);
  f->hook = record;
  fx_start(f, NULL, NULL, "/");
  cr_assert_eq(wire_server_set_batch_hook(f->server, on_batch, &B), 0);
}

static void expect_text(fx *f, int fd, const char *want) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&f->pump, fd, &m, 3000), 0, "no frame for %s", want);
  cr_assert_eq(m.opcode, 0x1);
  cr_assert_eq(m.len, strlen(want));
  cr_assert(memcmp(m.data, want, m.len) == 0, "got %.*s, want %s", (int)m.len, m.data, want);
  wt_msg_free(&m);
}

Test(batch_hook, one_read_is_one_batch_and_its_end_joins_the_write) {
  fx f;
  start(&f);
  int fd = wt_open(&f.pump, f.port, "/");
  cr_assert_geq(fd, 0);
  /* Three frames in one write: the server reads them at once. */
  uint8_t buf[64];
  size_t n = wt_frame(buf, 1, 0x1, "one", 3, 1);
  n += wt_frame(buf + n, 1, 0x1, "two", 3, 1);
  n += wt_frame(buf + n, 1, 0x1, "last", 4, 1);
  int before = B.begins;
  cr_assert_eq(write(fd, buf, n), (ssize_t)n);
  expect_text(&f, fd, "one");
  expect_text(&f, fd, "two");
  expect_text(&f, fd, "last");
  expect_text(&f, fd, "end"); /* queued by the end of the batch */
  cr_assert_gt(B.queued_at_end, 0, "the batch's echoes were written before its end");
  cr_assert_eq(B.n_msgs, 3);
  cr_assert_gt(B.batch_of[0], before);
  cr_assert_eq(B.batch_of[1], B.batch_of[0], "messages of one read in two batches");
  cr_assert_eq(B.batch_of[2], B.batch_of[0], "messages of one read in two batches");
  cr_assert_eq(B.nested, 0);
  cr_assert_eq(B.open, 0, "a batch did not end");
  cr_assert_eq(B.begins, B.ends);
  close(fd);
  fx_stop(&f);
}

Test(batch_hook, null_turns_it_off_and_a_null_server_is_einval) {
  fx f;
  start(&f);
  cr_assert_eq(wire_server_set_batch_hook(NULL, on_batch, &B), WIRE_EINVAL);
  cr_assert_eq(wire_server_set_batch_hook(f.server, NULL, NULL), 0);
  int fd = wt_open(&f.pump, f.port, "/");
  cr_assert_geq(fd, 0);
  B.open = 1; /* record() checks it: the hook no longer sets it */
  wt_send_frame(&f.pump, fd, 1, 0x1, "hi", 2);
  expect_text(&f, fd, "hi");
  cr_assert_eq(B.begins, 0);
  cr_assert_eq(B.ends, 0);
  close(fd);
  fx_stop(&f);
}
