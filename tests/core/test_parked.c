/*
 * test_parked.c -- a connection the engine stopped reading because its
 * handler never finishes (paused, a message already waiting) still notices
 * its peer leave, over real sockets on 127.0.0.1: a reset ends it (1006,
 * the package's cue to cancel the handler); a close frame followed by a FIN
 * is read, answered, and the close deadline ends it; a peer that stays is
 * left alone, and a resume delivers what waited.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static fx F;

static void teardown(void) {
  if (F.server != NULL)
    fx_stop(&F);
}

TestSuite(parked, .fini = teardown, .timeout = 60);

/* The first message pauses its connection for good: a hung handler. */
static void hang(fx *f, wire_conn *c, const wire_message *m) {
  (void)m;
  if (f->n_message == 1)
    wire_conn_pause(c);
}

/* A connection whose handler hangs on "a" while "b" waits unread. */
static int hung_connection(void) {
  memset(&F, 0, sizeof F);
  F.hook = hang;
  wire_endpoint_options eo = {.pong_timeout_ms = 300};
  fx_start(&F, NULL, &eo, "/ws");
  int fd = wt_open(&F.pump, F.port, "/ws");
  cr_assert_geq(fd, 0);
  wt_send_frame(&F.pump, fd, 1, 0x1, "a", 1);
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  wt_send_frame(&F.pump, fd, 1, 0x1, "b", 1);
  FX_PUMP_UNTIL(&F, wire_conn_queued(F.conn) == 1);
  cr_assert_eq(wire_conn_queued(F.conn), 1, "b waits in the pause queue");
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_message, 1);
  return fd;
}

Test(parked, a_reset_from_the_peer_of_a_hung_handler_ends_the_connection) {
  int fd = hung_connection();
  struct linger lg = {1, 0};
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  uint64_t t0 = wt_now_ms();
  close(fd); /* RST */
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(F.n_close, 1, "the reset went unnoticed");
  cr_assert_eq(F.close_code, 1006);
  cr_assert_lt(wt_now_ms() - t0, 2500, "noticed within the probe interval");
  cr_assert_eq(wire_server_connection_count(F.server), 0);
}

Test(parked, a_close_frame_and_fin_to_a_hung_handler_are_answered_and_end_it) {
  int fd = hung_connection();
  uint8_t close_frame[16];
  const uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
  size_t n = wt_frame(close_frame, 1, 0x8, code, 2, 1);
  wt_write(&F.pump, fd, close_frame, n);
  shutdown(fd, SHUT_WR);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 5000), 0, "no close reply");
  cr_assert_eq(m.opcode, 0x8);
  cr_assert_eq(m.close_code, 1000);
  wt_msg_free(&m);
  cr_assert(wt_wait_eof(&F.pump, fd, 5000), "the server never closed its side");
  FX_PUMP_UNTIL(&F, F.n_close == 1);
  cr_assert_eq(F.n_close, 1);
  cr_assert_eq(F.close_code, 1000);
  close(fd);
}

Test(parked, a_peer_that_stays_is_left_alone_and_a_resume_delivers_what_waited) {
  int fd = hung_connection();
  wt_pump_for(&F.pump, 1300); /* past one probe */
  cr_assert_eq(F.n_close, 0);
  wire_conn_resume(F.conn);
  FX_PUMP_UNTIL(&F, F.n_message == 2);
  cr_assert_str_eq(F.log, "a|b");
  wt_send_frame(&F.pump, fd, 1, 0x1, "c", 1);
  FX_PUMP_UNTIL(&F, F.n_message == 3);
  cr_assert_str_eq(F.log, "a|b|c");
  close(fd);
}
