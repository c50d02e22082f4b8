/*
 * test_deflate.c -- permessage-deflate (RFC 7692) through the in-memory
 * transport with scripted bytes: the offer parser, every negotiation case and
 * its exact answer, compressed messages both ways (whole, fragmented, with a
 * final block), the threshold, RSV1 where it is refused (1002), corrupt data
 * and bad UTF-8 after inflating (1007), a decompression bomb (1009 at
 * max_message_size), a publish compressed once for many subscribers, the
 * dedicated mode's context takeover, and no zlib state on an idle connection.
 */
#define _GNU_SOURCE /* memmem */
#include "conn_internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define REQ_HEAD                                                                                   \
  "Host: example.com\r\n"                                                                          \
  "Upgrade: websocket\r\n"                                                                         \
  "Connection: Upgrade\r\n"                                                                        \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                                \
  "Sec-WebSocket-Version: 13\r\n"

static struct {
  wire_server *s;
  int n_close, close_code, n_msg, n_error, last_error;
  size_t last_len;
  int subscribe;
  char last_text[512]; /* the last error's message */
} T;

static void on_message(wire_conn *c, const wire_message *m, void *ud) {
  (void)ud;
  T.n_msg++;
  T.last_len = m->len;
  if (m->kind == WIRE_MSG_TEXT)
    wire_conn_send_text(c, (const char *)m->data, m->len);
  else
    wire_conn_send_binary(c, m->data, m->len);
}

static int on_connect(wire_conn *c, const wire_request *r, void *ud) {
  (void)r, (void)ud;
  if (T.subscribe)
    cr_assert_eq(wire_conn_subscribe(c, "room", 4), 0);
  return WIRE_CONNECT_ACCEPT;
}

static void on_close(wire_conn *c, int code, const char *reason, size_t rlen, void *ud) {
  (void)c, (void)reason, (void)rlen, (void)ud;
  T.n_close++;
  T.close_code = code;
}

static int on_error(wire_conn *c, const wire_error *err, void *ud) {
  (void)c, (void)ud;
  T.n_error++;
  T.last_error = err->code;
  snprintf(T.last_text, sizeof T.last_text, "%s", err->message);
  return 0;
}

static const wire_callbacks CB = {
    .on_connect = on_connect, .on_message = on_message, .on_close = on_close, .on_error = on_error};

static void add(const char *path, wire_compression mode, size_t threshold, unsigned bits,
                size_t max_message) {
  wire_endpoint_options o = {0};
  o.compression = mode;
  o.compression_threshold = threshold;
  o.compression_window_bits = bits;
  o.max_message_size = max_message;
  cr_assert_eq(wire_endpoint_add(T.s, path, &o, &CB, NULL, NULL, NULL), 0);
}

static void setup(void) {
  memset(&T, 0, sizeof T);
  cr_assert_eq(wire_server_new(NULL, &T.s), 0);
  add("/s", WIRE_COMPRESSION_SHARED, 0, 0, 0);
  add("/all", WIRE_COMPRESSION_SHARED, 1, 0, 0);
  add("/off", WIRE_COMPRESSION_OFF, 0, 0, 0);
  add("/ded", WIRE_COMPRESSION_DEDICATED, 1, 0, 0);
  add("/ded10", WIRE_COMPRESSION_DEDICATED, 1, 10, 0);
  add("/small", WIRE_COMPRESSION_SHARED, 1, 0, 4096);
}

static void teardown(void) {
  wire_server_shutdown(T.s, 100, NULL, NULL);
  for (int i = 0; i < 1000 && wire_server_process(T.s) == 1; i++)
    ;
  cr_assert_eq(wire_server_free(T.s), 0);
}

TestSuite(deflate, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ----------------------------------------------------------------- */

/* A masked client frame (rsv: the RSV bits, 0x40 = RSV1) into a new buffer. */
static uint8_t *cframe(size_t *n, int fin, int rsv, int opcode, const void *payload, size_t len) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t *out = malloc(len + 14);
  size_t k = 0;
  out[k++] = (uint8_t)((fin ? 0x80 : 0) | rsv | opcode);
  if (len < 126) {
    out[k++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    out[k++] = 0x80 | 126;
    out[k++] = (uint8_t)(len >> 8);
    out[k++] = (uint8_t)len;
  } else {
    out[k++] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      out[k++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  memcpy(out + k, mask, 4);
  k += 4;
  for (size_t i = 0; i < len; i++)
    out[k + i] = ((const uint8_t *)payload)[i] ^ mask[i % 4];
  *n = k + len;
  return out;
}

static void send_frame(wire__mem *m, int fin, int rsv, int opcode, const void *p, size_t len) {
  size_t n;
  uint8_t *f = cframe(&n, fin, rsv, opcode, p, len);
  cr_assert_eq(wire__mem_feed(m, f, n), 0);
  free(f);
  wire__mem_run(m);
}

/* Raw deflate of data as the client would send it (sync flush, the
 * trailing 00 00 ff ff removed; `finish`: a final block instead). */
static uint8_t *zdeflate(z_stream *z, const void *data, size_t len, size_t *out_len, int finish) {
  size_t cap = deflateBound(z, len) + 64;
  uint8_t *out = malloc(cap);
  z->next_in = (Bytef *)data;
  z->avail_in = (uInt)len;
  z->next_out = out;
  z->avail_out = (uInt)cap;
  cr_assert_neq(deflate(z, finish ? Z_FINISH : Z_SYNC_FLUSH), Z_STREAM_ERROR);
  size_t n = cap - z->avail_out;
  if (!finish) {
    cr_assert_geq(n, 4);
    cr_assert_eq(memcmp(out + n - 4, "\x00\x00\xff\xff", 4), 0);
    n -= 4;
  }
  *out_len = n;
  return out;
}

static uint8_t *compress_msg(const void *data, size_t len, size_t *out_len) {
  z_stream z = {0};
  cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  uint8_t *out = zdeflate(&z, data, len, out_len, 0);
  deflateEnd(&z);
  return out;
}

/* Inflate a server payload with z (the trailer appended). */
static uint8_t *zinflate(z_stream *z, const uint8_t *p, size_t len, size_t *out_len) {
  uint8_t *in = malloc(len + 4);
  memcpy(in, p, len);
  memcpy(in + len, "\x00\x00\xff\xff", 4);
  size_t cap = 1 << 22;
  uint8_t *out = malloc(cap);
  z->next_in = in;
  z->avail_in = (uInt)(len + 4);
  z->next_out = out;
  z->avail_out = (uInt)cap;
  int r = inflate(z, Z_SYNC_FLUSH);
  cr_assert(r == Z_OK || r == Z_BUF_ERROR, "inflate: %d", r);
  cr_assert_eq(z->avail_in, 0);
  *out_len = cap - z->avail_out;
  free(in);
  return out;
}

/* One server frame from the output (consumed): its first byte and payload. */
typedef struct sframe {
  uint8_t b0;
  uint8_t *payload;
  size_t len;
} sframe;

static sframe next_frame(wire__mem *m) {
  size_t have;
  const uint8_t *o = wire__mem_output(m, &have);
  cr_assert_geq(have, 2, "no frame in the output");
  size_t hl = 2, len = o[1] & 0x7f;
  cr_assert_eq(o[1] & 0x80, 0, "server frames are unmasked");
  if (len == 126) {
    len = ((size_t)o[2] << 8) | o[3];
    hl = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 2; i < 10; i++)
      len = (len << 8) | o[i];
    hl = 10;
  }
  cr_assert_geq(have, hl + len, "frame incomplete: %zu of %zu", have, hl + len);
  sframe f = {o[0], malloc(len + 1), len};
  memcpy(f.payload, o + hl, len);
  wire__mem_consume(m, hl + len);
  return f;
}

/* The 101 for `path` with extension headers `ext` (a string of header lines);
 * returns the connection and the Sec-WebSocket-Extensions value answered
 * into ans ("" when none). */
static wire__mem *open_ext(const char *path, const char *ext, char *ans, size_t cap) {
  char req[2048];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n" REQ_HEAD "%s\r\n", path, ext);
  wire__mem *m;
  cr_assert_eq(wire__mem_open(T.s, &m), 0);
  cr_assert_eq(wire__mem_feed(m, req, strlen(req)), 0);
  wire__mem_run(m);
  size_t have;
  const char *o = (const char *)wire__mem_output(m, &have);
  cr_assert_geq(have, 12);
  cr_assert_eq(strncmp(o, "HTTP/1.1 101", 12), 0, "%.*s", (int)have, o);
  const char *end = memmem(o, have, "\r\n\r\n", 4);
  cr_assert_not_null(end);
  ans[0] = 0;
  const char *h = memmem(o, (size_t)(end - o), "Sec-WebSocket-Extensions: ", 26);
  if (h != NULL) {
    const char *e = strstr(h, "\r\n");
    size_t n = (size_t)(e - h - 26);
    cr_assert_lt(n, cap);
    memcpy(ans, h + 26, n);
    ans[n] = 0;
  }
  wire__mem_consume(m, (size_t)(end - o) + 4);
  return m;
}

static void expect_answer(const char *path, const char *ext, const char *want) {
  char ans[512];
  wire__mem *m = open_ext(path, ext, ans, sizeof ans);
  cr_assert_str_eq(ans, want, "offer %s", ext);
  wire__mem_free(m);
}

#define SHARED_ANSWER "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
#define OFFER(v) "Sec-WebSocket-Extensions: " v "\r\n"

/* Our close frame with `code`, then FIN; the error reported; EOF ends it. */
static void expect_close(wire__mem *m, int code, int error) {
  sframe f = next_frame(m);
  cr_assert_eq(f.b0, 0x88);
  cr_assert_eq(f.len, 2);
  cr_assert_eq((f.payload[0] << 8) | f.payload[1], code);
  free(f.payload);
  cr_assert(wire__mem_fin(m), "no FIN after the close");
  cr_assert_eq(T.last_error, error, "error %d", T.last_error);
  wire__mem_eof(m);
  wire__mem_run(m);
  cr_assert(wire__mem_closed(m));
  cr_assert_eq(T.close_code, code);
  wire__mem_free(m);
}

static char *text_of(size_t n) {
  char *t = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    t[i] = "chat message about the weather "[i % 31];
  t[n] = 0;
  return t;
}

/* ---- the offer parser --------------------------------------------------------- */

static int first(const wire__pmd_offer *o, void *ud) {
  *(wire__pmd_offer *)ud = *o;
  return 1;
}

static int parse(const char *v, wire__pmd_offer *o) {
  memset(o, 0, sizeof *o);
  return wire__pmd_offers(v, strlen(v), first, o);
}

Test(deflate, parser_reads_every_parameter) {
  wire__pmd_offer o;
  cr_assert_eq(parse("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                     " server_max_window_bits=10; client_max_window_bits=\"12\"",
                     &o),
               1);
  cr_assert(o.snct && o.cnct);
  cr_assert_eq(o.swb, 10);
  cr_assert(o.cwb_set);
  cr_assert_eq(o.cwb, 12);
  cr_assert_eq(parse("PerMessage-Deflate ;client_max_window_bits", &o), 1);
  cr_assert(o.cwb_set);
  cr_assert_eq(o.cwb, 0);
}

Test(deflate, parser_skips_bad_offers_and_stops_at_syntax_errors) {
  wire__pmd_offer o;
  const char *declined[] = {
      "permessage-deflate; server_max_window_bits",       /* needs a value */
      "permessage-deflate; server_max_window_bits=16",    /* out of range */
      "permessage-deflate; server_max_window_bits=08",    /* leading zero */
      "permessage-deflate; client_max_window_bits=7",     /* out of range */
      "permessage-deflate; server_no_context_takeover=1", /* takes no value */
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
      "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
      "permessage-deflate; x-unknown",
      "x-webkit-deflate-frame",
      "permessage-deflate; server_max_window_bits=\"10", /* unterminated quote */
      "permessage-deflate foo",                          /* junk */
      ", ,",
      "",
  };
  for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++)
    cr_assert_eq(parse(declined[i], &o), 0, "accepted: %s", declined[i]);
  cr_assert_eq(parse("permessage-deflate; x=1, permessage-deflate; server_max_window_bits=11", &o),
               1);
  cr_assert_eq(o.swb, 11);
  cr_assert_eq(parse("foo; a=\"x,y\", permessage-deflate", &o), 1);
}

/* ---- negotiation ---------------------------------------------------------------- */

Test(deflate, no_offer_no_extension) {
  expect_answer("/s", "", "");
}

Test(deflate, shared_mode_answers_no_context_takeover_both_ways) {
  expect_answer("/s", OFFER("permessage-deflate"), SHARED_ANSWER);
  expect_answer("/s", OFFER("permessage-deflate; client_max_window_bits"), SHARED_ANSWER);
  expect_answer("/s", OFFER("permessage-deflate; client_max_window_bits=9"), SHARED_ANSWER);
  expect_answer("/s", OFFER("permessage-deflate; server_no_context_takeover"), SHARED_ANSWER);
}

Test(deflate, server_max_window_bits_is_echoed) {
  expect_answer("/s", OFFER("permessage-deflate; server_max_window_bits=10"),
                SHARED_ANSWER "; server_max_window_bits=10");
  /* 8 is beyond zlib's raw deflate: that offer is declined, the next taken */
  expect_answer("/s", OFFER("permessage-deflate; server_max_window_bits=8, permessage-deflate"),
                SHARED_ANSWER);
  expect_answer("/s", OFFER("permessage-deflate; server_max_window_bits=8"), "");
}

Test(deflate, bad_offers_are_declined_and_the_next_header_counts) {
  expect_answer("/s", OFFER("permessage-deflate; foo") OFFER("permessage-deflate"), SHARED_ANSWER);
  expect_answer("/s",
                OFFER("permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
                "");
  expect_answer("/s", OFFER("x-foo; bar=1, permessage-deflate; client_max_window_bits=15"),
                SHARED_ANSWER);
}

Test(deflate, off_declines) {
  expect_answer("/off", OFFER("permessage-deflate"), "");
}

Test(deflate, dedicated_mode_keeps_context_takeover) {
  expect_answer("/ded", OFFER("permessage-deflate; client_max_window_bits"),
                "permessage-deflate; client_max_window_bits=15");
  expect_answer("/ded", OFFER("permessage-deflate"), "permessage-deflate");
  expect_answer("/ded10", OFFER("permessage-deflate; client_max_window_bits"),
                "permessage-deflate; client_max_window_bits=10");
  expect_answer("/ded10",
                OFFER("permessage-deflate; server_max_window_bits=12; client_no_context_takeover"),
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=10");
  expect_answer("/ded", OFFER("permessage-deflate; server_no_context_takeover"),
                "permessage-deflate; server_no_context_takeover");
}

/* ---- messages ------------------------------------------------------------------- */

static wire__mem *open_shared(const char *path) {
  char ans[256];
  wire__mem *m =
      open_ext(path, OFFER("permessage-deflate; client_max_window_bits"), ans, sizeof ans);
  cr_assert_str_eq(ans, SHARED_ANSWER);
  return m;
}

/* The echo of a compressed frame: RSV1, and it inflates to want. */
static void expect_compressed_echo(wire__mem *m, int opcode, const void *want, size_t len) {
  sframe f = next_frame(m);
  cr_assert_eq(f.b0, 0xC0 | opcode, "first byte %02x", f.b0);
  cr_assert_lt(f.len, len);
  z_stream z = {0};
  cr_assert_eq(inflateInit2(&z, -15), Z_OK);
  size_t n;
  uint8_t *got = zinflate(&z, f.payload, f.len, &n);
  inflateEnd(&z);
  cr_assert_eq(n, len);
  cr_assert_eq(memcmp(got, want, len), 0);
  free(got);
  free(f.payload);
}

Test(deflate, compressed_text_round_trips) {
  wire__mem *m = open_shared("/s");
  char *t = text_of(5000);
  size_t zn;
  uint8_t *z = compress_msg(t, 5000, &zn);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  cr_assert_eq(T.n_msg, 1);
  cr_assert_eq(T.last_len, 5000);
  expect_compressed_echo(m, 0x1, t, 5000);
  /* idle again: no context lent, no zlib state of its own */
  cr_assert_null(wire__mem_conn(m)->slot);
  cr_assert(wire__mem_conn(m)->x == NULL || wire__mem_conn(m)->x->zc == NULL);
  free(z);
  free(t);
  wire__mem_free(m);
}

Test(deflate, below_the_threshold_goes_plain) {
  wire__mem *m = open_shared("/s");
  char *t = text_of(1000);
  size_t zn;
  uint8_t *z = compress_msg(t, 1000, &zn);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  sframe f = next_frame(m);
  cr_assert_eq(f.b0, 0x81);
  cr_assert_eq(f.len, 1000);
  cr_assert_eq(memcmp(f.payload, t, 1000), 0);
  free(f.payload);
  /* an uncompressed message on a compressing connection is fine too */
  send_frame(m, 1, 0, 0x2, t, 1000);
  f = next_frame(m);
  cr_assert_eq(f.b0, 0x82);
  free(f.payload);
  free(z);
  free(t);
  wire__mem_free(m);
}

Test(deflate, incompressible_data_goes_plain) {
  wire__mem *m = open_shared("/all");
  uint8_t rnd[3000];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof rnd; i++) {
    x = x * 1103515245u + 12345u;
    rnd[i] = (uint8_t)(x >> 16);
  }
  send_frame(m, 1, 0, 0x2, rnd, sizeof rnd);
  sframe f = next_frame(m);
  cr_assert_eq(f.b0, 0x82);
  cr_assert_eq(f.len, sizeof rnd);
  free(f.payload);
  wire__mem_free(m);
}

Test(deflate, a_compressed_message_split_across_fragments) {
  wire__mem *m = open_shared("/all");
  char *t = text_of(20000);
  size_t zn;
  uint8_t *z = compress_msg(t, 20000, &zn);
  size_t a = zn / 3, b = 2 * zn / 3;
  send_frame(m, 0, 0x40, 0x1, z, a);
  send_frame(m, 0, 0, 0x0, z + a, b - a);
  cr_assert_eq(T.n_msg, 0);
  send_frame(m, 1, 0, 0x0, z + b, zn - b);
  cr_assert_eq(T.n_msg, 1);
  expect_compressed_echo(m, 0x1, t, 20000);
  free(z);
  free(t);
  wire__mem_free(m);
}

Test(deflate, a_message_ending_in_a_final_block) {
  wire__mem *m = open_shared("/all");
  char *t = text_of(3000);
  z_stream zs = {0};
  cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t zn;
  uint8_t *z = zdeflate(&zs, t, 3000, &zn, 1);
  deflateEnd(&zs);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  cr_assert_eq(T.n_msg, 1);
  expect_compressed_echo(m, 0x1, t, 3000);
  /* and the next message inflates with a fresh stream */
  free(z);
  z = compress_msg(t, 3000, &zn);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  cr_assert_eq(T.n_msg, 2);
  expect_compressed_echo(m, 0x1, t, 3000);
  free(z);
  free(t);
  wire__mem_free(m);
}

Test(deflate, rsv1_without_negotiation_is_1002) {
  char ans[64];
  wire__mem *m = open_ext("/s", "", ans, sizeof ans);
  size_t zn;
  uint8_t *z = compress_msg("hello", 5, &zn);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  free(z);
  expect_close(m, 1002, WIRE_EPROTOCOL);
}

Test(deflate, rsv1_on_a_continuation_frame_is_1002) {
  wire__mem *m = open_shared("/s");
  send_frame(m, 0, 0, 0x1, "abc", 3);
  send_frame(m, 1, 0x40, 0x0, "def", 3);
  expect_close(m, 1002, WIRE_EPROTOCOL);
}

Test(deflate, rsv1_on_a_control_frame_is_1002) {
  wire__mem *m = open_shared("/s");
  send_frame(m, 1, 0x40, 0x9, "", 0);
  expect_close(m, 1002, WIRE_EPROTOCOL);
}

Test(deflate, rsv2_and_rsv3_stay_refused) {
  wire__mem *m = open_shared("/s");
  send_frame(m, 1, 0x20, 0x1, "abc", 3);
  expect_close(m, 1002, WIRE_EPROTOCOL);
  m = open_shared("/s");
  send_frame(m, 1, 0x50, 0x1, "abc", 3);
  expect_close(m, 1002, WIRE_EPROTOCOL);
}

Test(deflate, bad_utf8_inside_compressed_text_is_1007) {
  wire__mem *m = open_shared("/s");
  uint8_t bad[2000];
  memset(bad, 'a', sizeof bad);
  bad[1500] = 0xff;
  size_t zn;
  uint8_t *z = compress_msg(bad, sizeof bad, &zn);
  send_frame(m, 1, 0x40, 0x1, z, zn);
  free(z);
  cr_assert_eq(T.n_msg, 0);
  expect_close(m, 1007, WIRE_EUTF8);
  cr_assert(strstr(T.last_text, "UTF-8"), "%s", T.last_text);
}

/* Binary or text: the error says the data is corrupt, not that it is not
 * UTF-8. */
Test(deflate, corrupt_deflate_data_is_1007_reported_as_corrupt) {
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x11};
  for (int op = 0x1; op <= 0x2; op++) {
    wire__mem *m = open_shared("/s");
    send_frame(m, 1, 0x40, op, junk, sizeof junk);
    cr_assert_eq(T.n_msg, 0);
    expect_close(m, 1007, WIRE_EPROTOCOL);
    cr_assert(strstr(T.last_text, "permessage-deflate: the compressed data is corrupt"), "%s",
              T.last_text);
  }
}

Test(deflate, data_after_the_final_block_is_corrupt) {
  wire__mem *m = open_shared("/s");
  z_stream zs = {0};
  cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  size_t zn;
  uint8_t *z = zdeflate(&zs, "hello", 5, &zn, 1);
  deflateEnd(&zs);
  uint8_t *more = malloc(zn + 3);
  memcpy(more, z, zn);
  memcpy(more + zn, "xyz", 3);
  send_frame(m, 1, 0x40, 0x1, more, zn + 3);
  free(more);
  free(z);
  cr_assert_eq(T.n_msg, 0);
  expect_close(m, 1007, WIRE_EPROTOCOL);
  cr_assert(strstr(T.last_text, "corrupt"), "%s", T.last_text);
}

Test(deflate, a_bomb_stops_at_max_message_size) {
  /* 16 MiB of zeros compress to about 16 KiB; /small allows 4 KiB. */
  size_t big = 16u << 20;
  uint8_t *zeros = calloc(1, big);
  size_t zn;
  uint8_t *z = compress_msg(zeros, big, &zn);
  free(zeros);
  cr_assert_lt(zn, 100000);
  wire__mem *m = open_shared("/small");
  send_frame(m, 1, 0x40, 0x2, z, zn > 4000 ? 4000 : zn); /* the first 4 KB: ~4 MiB inflated */
  free(z);
  cr_assert_eq(T.n_msg, 0);
  expect_close(m, 1009, WIRE_ETOOBIG);
}

Test(deflate, a_bomb_on_the_default_limit_costs_at_most_that_limit) {
  size_t big = 16u << 20;
  uint8_t *zeros = calloc(1, big);
  size_t zn;
  uint8_t *z = compress_msg(zeros, big, &zn);
  free(zeros);
  wire__mem *m = open_shared("/s");
  send_frame(m, 1, 0x40, 0x2, z, zn);
  free(z);
  cr_assert_eq(T.n_msg, 0);
  cr_assert_eq(T.close_code, 0);
  expect_close(m, 1009, WIRE_ETOOBIG);
}

Test(deflate, an_incompressible_message_at_the_limit_is_accepted) {
  /* deflate makes 4096 random bytes a little longer than max_message_size:
   * the limit applies to the inflated message */
  uint8_t rnd[4096];
  uint32_t x = 99;
  for (size_t i = 0; i < sizeof rnd; i++) {
    x = x * 1103515245u + 12345u;
    rnd[i] = (uint8_t)(x >> 16);
  }
  size_t zn;
  uint8_t *z = compress_msg(rnd, sizeof rnd, &zn);
  cr_assert_gt(zn, sizeof rnd);
  wire__mem *m = open_shared("/small");
  send_frame(m, 1, 0x40, 0x2, z, zn);
  free(z);
  cr_assert_eq(T.n_msg, 1);
  cr_assert_eq(T.last_len, sizeof rnd);
  sframe f = next_frame(m);
  cr_assert_eq(f.b0, 0x82); /* it does not compress: sent plain */
  cr_assert_eq(f.len, sizeof rnd);
  cr_assert_eq(memcmp(f.payload, rnd, sizeof rnd), 0);
  free(f.payload);
  wire__mem_free(m);
}

/* ---- topics ---------------------------------------------------------------------- */

Test(deflate, a_publish_is_compressed_once_for_all_compressing_subscribers) {
  T.subscribe = 1;
  wire__mem *a = open_shared("/s"), *b = open_shared("/s");
  char ans[64];
  wire__mem *p = open_ext("/s", "", ans, sizeof ans);
  char *t = text_of(4000);
  cr_assert_eq(wire_server_publish(T.s, "room", 4, WIRE_MSG_TEXT, t, 4000, NULL), 3);
  wire__mem_run(a);
  wire__mem_run(b);
  wire__mem_run(p);
  size_t na, nb;
  const uint8_t *oa = wire__mem_output(a, &na), *ob = wire__mem_output(b, &nb);
  cr_assert_eq(na, nb);
  cr_assert_eq(memcmp(oa, ob, na), 0);
  expect_compressed_echo(a, 0x1, t, 4000);
  wire__mem_consume(b, nb);
  sframe f = next_frame(p);
  cr_assert_eq(f.b0, 0x81);
  cr_assert_eq(f.len, 4000);
  free(f.payload);
  free(t);
  wire__mem_free(a);
  wire__mem_free(b);
  wire__mem_free(p);
}

/* ---- dedicated ------------------------------------------------------------------- */

Test(deflate, dedicated_mode_takes_context_over_between_messages) {
  char ans[256];
  wire__mem *m = open_ext("/ded", OFFER("permessage-deflate"), ans, sizeof ans);
  cr_assert_str_eq(ans, "permessage-deflate");
  char *t = text_of(600);
  uint32_t x = 7; /* letters that compress poorly on their own, well the second time */
  for (size_t i = 0; i < 600; i++) {
    x = x * 1103515245u + 12345u;
    t[i] = (char)('a' + (x >> 16) % 26);
  }
  z_stream cz = {0}, sz = {0};
  cr_assert_eq(deflateInit2(&cz, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  cr_assert_eq(inflateInit2(&sz, -15), Z_OK);
  size_t first_len = 0;
  for (int i = 0; i < 3; i++) {
    size_t zn;
    uint8_t *z = zdeflate(&cz, t, 600, &zn, 0); /* the client keeps its context too */
    send_frame(m, 1, 0x40, 0x1, z, zn);
    free(z);
    cr_assert_eq(T.n_msg, i + 1);
    sframe f = next_frame(m);
    cr_assert_eq(f.b0, 0xC1);
    if (i == 0)
      first_len = f.len;
    else
      cr_assert_lt(f.len, first_len / 4, "no context taken over: %zu vs %zu", f.len, first_len);
    size_t n;
    uint8_t *got = zinflate(&sz, f.payload, f.len, &n);
    cr_assert_eq(n, 600);
    cr_assert_eq(memcmp(got, t, 600), 0);
    free(got);
    free(f.payload);
  }
  cr_assert(wire__mem_conn(m)->x != NULL && wire__mem_conn(m)->x->zc != NULL);
  deflateEnd(&cz);
  inflateEnd(&sz);
  free(t);
  wire__mem_free(m);
}

Test(deflate, endpoint_options_are_checked) {
  wire_endpoint_options o = {0};
  o.compression = (wire_compression)7;
  cr_assert_eq(wire_endpoint_add(T.s, "/x", &o, &CB, NULL, NULL, NULL), WIRE_EINVAL);
  o.compression = WIRE_COMPRESSION_DEDICATED;
  o.compression_window_bits = 8;
  cr_assert_eq(wire_endpoint_add(T.s, "/x", &o, &CB, NULL, NULL, NULL), WIRE_EINVAL);
  o.compression_window_bits = 16;
  cr_assert_eq(wire_endpoint_add(T.s, "/x", &o, &CB, NULL, NULL, NULL), WIRE_EINVAL);
  o.compression_window_bits = 9;
  cr_assert_eq(wire_endpoint_add(T.s, "/x", &o, &CB, NULL, NULL, NULL), 0);
}
