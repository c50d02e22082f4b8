/*
 * test_pipeline.c -- the message pipeline (pipeline.c) over real sockets:
 * codec frame kinds, decoding, validation and dispatch, the invalid-message
 * policies with their exact replies and close codes, and send_value.
 */
#include "support/fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static fx F;
static void setup(void) {
  memset(&F, 0, sizeof F);
}
static void teardown(void) {
  fx_stop(&F);
}
TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 30);

static const char *chat_schema =
    "{\"type\":\"object\",\"required\":[\"type\",\"text\"],"
    "\"properties\":{\"type\":{\"const\":\"chat\"},\"text\":{\"type\":\"string\"}}}";
static const char *join_schema =
    "{\"type\":\"object\",\"required\":[\"type\",\"room\"],"
    "\"properties\":{\"type\":{\"const\":\"join\"},\"room\":{\"type\":\"string\"}}}";

static char value_text[256];
static void capture_value(fx *f, wire_conn *c, const wire_message *m) {
  (void)f;
  (void)c;
  const wire_value *text = m->value ? wire_value_get(m->value, "text", 4) : NULL;
  snprintf(value_text, sizeof value_text, "%s", text ? wire_value_string(text, NULL) : "(none)");
}

static int start(wire_codec codec, const char *const *schemas, size_t n, wire_invalid_policy p) {
  wire_endpoint_options eo = {0};
  eo.codec = codec;
  eo.message_schemas = schemas;
  eo.n_message_schemas = n;
  eo.invalid_policy = p;
  F.hook = capture_value;
  fx_start(&F, NULL, &eo, "/p");
  int fd = wt_open(&F.pump, F.port, "/p");
  cr_assert_geq(fd, 0);
  return fd;
}

static void expect_text(int fd, const char *want) {
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0, "no reply");
  cr_assert_eq(m.opcode, 0x1);
  cr_assert_str_eq((char *)m.data, want);
  wt_msg_free(&m);
}

static void send_text(int fd, const char *s) {
  wt_send_frame(&F.pump, fd, 1, 0x1, s, strlen(s));
}

Test(pipeline, json_endpoint_delivers_the_decoded_value) {
  int fd = start(WIRE_CODEC_JSON, NULL, 0, WIRE_INVALID_REPLY);
  send_text(fd, "{\"text\":\"hi there\"}");
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_eq(F.n_message, 1);
  cr_assert_str_eq(value_text, "hi there");
  cr_assert_eq(F.last_handler, -1);
  close(fd);
}

Test(pipeline, binary_frame_on_a_json_endpoint_is_ecodec_and_gets_invalid_message) {
  int fd = start(WIRE_CODEC_JSON, NULL, 0, WIRE_INVALID_REPLY);
  wt_send_frame(&F.pump, fd, 1, 0x2, "{}", 2);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x1);
  cr_assert(
      strstr((char *)m.data, "{\"type\":\"error\",\"error\":\"invalid_message\",\"message\":\"") ==
          (char *)m.data,
      "%s", m.data);
  wt_msg_free(&m);
  cr_assert_eq(F.last_error, WIRE_ECODEC);
  cr_assert_eq(F.n_message, 0);
  send_text(fd, "{\"text\":\"still open\"}");
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_str_eq(value_text, "still open");
  close(fd);
}

Test(pipeline, undecodable_json_gets_invalid_message_and_the_connection_stays_open) {
  int fd = start(WIRE_CODEC_JSON, NULL, 0, WIRE_INVALID_REPLY);
  send_text(fd, "{\"text\":");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert(strstr((char *)m.data, "\"error\":\"invalid_message\""), "%s", m.data);
  wt_msg_free(&m);
  cr_assert_eq(F.last_error, WIRE_EDESERIALIZE);
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  close(fd);
}

Test(pipeline, validation_failure_replies_with_path_and_keyword) {
  const char *schemas[] = {chat_schema};
  int fd = start(WIRE_CODEC_JSON, schemas, 1, WIRE_INVALID_REPLY);
  send_text(fd, "{\"type\":\"chat\",\"text\":5}");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  const char *want = "{\"type\":\"error\",\"error\":\"validation_failed\",\"path\":\"/text\","
                     "\"keyword\":\"type\",\"message\":\"";
  cr_assert(strncmp((char *)m.data, want, strlen(want)) == 0, "%s", m.data);
  wt_msg_free(&m);
  cr_assert_eq(F.last_error, WIRE_EVALIDATION);
  cr_assert_str_eq(F.last_error_path, "/text");
  send_text(fd, "{\"type\":\"chat\",\"text\":\"ok\"}");
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_eq(F.n_message, 1);
  cr_assert_eq(F.last_handler, 0);
  close(fd);
}

Test(pipeline, several_schemas_dispatch_to_the_matching_handler) {
  const char *schemas[] = {chat_schema, join_schema};
  int fd = start(WIRE_CODEC_JSON, schemas, 2, WIRE_INVALID_REPLY);
  send_text(fd, "{\"type\":\"join\",\"room\":\"r\"}");
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_eq(F.last_handler, 1);
  send_text(fd, "{\"type\":\"chat\",\"text\":\"t\"}");
  FX_PUMP_UNTIL(&F, F.n_message == 2);
  cr_assert_eq(F.last_handler, 0);
  send_text(fd, "{\"type\":\"leave\"}");
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert(
      strstr((char *)m.data, "{\"type\":\"error\",\"error\":\"unknown_message\",\"message\":") ==
          (char *)m.data,
      "%s", m.data);
  wt_msg_free(&m);
  cr_assert_eq(F.last_error, WIRE_EUNKNOWN_MESSAGE);
  cr_assert_eq(F.n_message, 2);
  close(fd);
}

static int close_code_after(wire_invalid_policy p, const char *frame) {
  const char *schemas[] = {chat_schema};
  int fd = start(WIRE_CODEC_JSON, schemas, 1, p);
  send_text(fd, frame);
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  int code = m.opcode == 0x8 ? m.close_code : -m.opcode;
  wt_msg_free(&m);
  close(fd);
  return code;
}

Test(pipeline, close_policy_closes_schema_failures_with_1008) {
  cr_assert_eq(close_code_after(WIRE_INVALID_CLOSE, "{\"type\":\"chat\"}"), 1008);
}

Test(pipeline, close_policy_closes_undecodable_messages_with_1007) {
  cr_assert_eq(close_code_after(WIRE_INVALID_CLOSE, "nope"), 1007);
}

Test(pipeline, ignore_policy_only_tells_on_error) {
  const char *schemas[] = {chat_schema};
  int fd = start(WIRE_CODEC_JSON, schemas, 1, WIRE_INVALID_IGNORE);
  send_text(fd, "[]");
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_error, 1);
  uint8_t b;
  cr_assert_eq(wt_read(&F.pump, fd, &b, 1, 50), 0, "ignore policy sent something");
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  close(fd);
}

Test(pipeline, on_error_that_handles_the_error_skips_the_policy) {
  F.error_verdict = 1;
  const char *schemas[] = {chat_schema};
  int fd = start(WIRE_CODEC_JSON, schemas, 1, WIRE_INVALID_CLOSE);
  send_text(fd, "[]");
  wt_pump_for(&F.pump, 50);
  cr_assert_eq(F.n_error, 1);
  uint8_t b;
  cr_assert_eq(wt_read(&F.pump, fd, &b, 1, 50), 0);
  cr_assert_eq(wire_conn_is_open(F.conn), 1);
  close(fd);
}

Test(pipeline, msgpack_endpoint_decodes_binary_and_replies_in_msgpack) {
  int fd = start(WIRE_CODEC_MSGPACK, NULL, 0, WIRE_INVALID_REPLY);
  /* {"text": "mp"} */
  const uint8_t mp[] = {0x81, 0xa4, 't', 'e', 'x', 't', 0xa2, 'm', 'p'};
  wt_send_frame(&F.pump, fd, 1, 0x2, mp, sizeof mp);
  FX_PUMP_UNTIL(&F, F.n_message == 1);
  cr_assert_str_eq(value_text, "mp");
  send_text(fd, "{}"); /* text on a MessagePack endpoint */
  wt_msg m;
  cr_assert_eq(wt_read_frame(&F.pump, fd, &m, 3000), 0);
  cr_assert_eq(m.opcode, 0x2);
  wire_doc *d;
  wire_doc_new(&d);
  const wire_value *v;
  cr_assert_eq(wire_decode(d, WIRE_CODEC_MSGPACK, m.data, m.len, 0, &v, NULL), 0);
  cr_assert_str_eq(wire_value_string(wire_value_get(v, "error", 5), NULL), "invalid_message");
  wire_doc_free(d);
  wt_msg_free(&m);
  cr_assert_eq(F.last_error, WIRE_ECODEC);
  close(fd);
}

Test(pipeline, send_value_encodes_json_as_a_text_frame) {
  int fd = start(WIRE_CODEC_JSON, NULL, 0, WIRE_INVALID_REPLY);
  wire_doc *d;
  wire_doc_new(&d);
  wire_value *o = wire_new_object(d, 1);
  wire_object_set(d, o, "n", 1, wire_new_int(d, 42));
  cr_assert_eq(wire_conn_send_value(F.conn, o, NULL), 0);
  expect_text(fd, "{\"n\":42}");
  wire_doc_free(d);
  close(fd);
}

Test(pipeline, send_value_checks_the_response_schema_and_sends_nothing_on_failure) {
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_JSON;
  eo.response_schema = "{\"type\":\"object\",\"required\":[\"ok\"]}";
  fx_start(&F, NULL, &eo, "/r");
  int fd = wt_open(&F.pump, F.port, "/r");
  wire_doc *d;
  wire_doc_new(&d);
  wire_value *bad = wire_new_object(d, 0);
  wire_error err;
  cr_assert_eq(wire_conn_send_value(F.conn, bad, &err), WIRE_EVALIDATION);
  cr_assert_str_eq(err.keyword, "required");
  wire_value *good = wire_new_object(d, 1);
  wire_object_set(d, good, "ok", 2, wire_new_bool(d, 1));
  cr_assert_eq(wire_conn_send_value(F.conn, good, &err), 0);
  expect_text(fd, "{\"ok\":true}");
  wire_value *nan = wire_new_double(d, 0.0 / 0.0);
  wire_value *arr = wire_new_object(d, 1);
  wire_object_set(d, arr, "ok", 2, nan);
  cr_assert_eq(wire_conn_send_value(F.conn, arr, &err), WIRE_ESERIALIZE);
  wire_doc_free(d);
  close(fd);
}

Test(pipeline, send_value_on_a_raw_endpoint_is_einval) {
  fx_start(&F, NULL, NULL, "/raw");
  int fd = wt_open(&F.pump, F.port, "/raw");
  wire_doc *d;
  wire_doc_new(&d);
  cr_assert_eq(wire_conn_send_value(F.conn, wire_new_null(d), NULL), WIRE_EINVAL);
  wire_doc_free(d);
  close(fd);
}

Test(pipeline, endpoint_add_reports_a_schema_that_does_not_compile) {
  fx_start(&F, NULL, NULL, "/ok");
  const char *schemas[] = {chat_schema, "{\"type\":12}"};
  wire_endpoint_options eo = {0};
  eo.codec = WIRE_CODEC_JSON;
  eo.message_schemas = schemas;
  eo.n_message_schemas = 2;
  wire_error err;
  memset(&err, 0, sizeof err);
  cr_assert_eq(wire_endpoint_add(F.server, "/bad", &eo, &fx_callbacks, &F, NULL, &err),
               WIRE_ESCHEMA);
  cr_assert(strstr(err.message, "message schema 1"), "%s", err.message);
  eo.codec = WIRE_CODEC_RAW;
  eo.n_message_schemas = 1;
  cr_assert_eq(wire_endpoint_add(F.server, "/raw", &eo, &fx_callbacks, &F, NULL, &err),
               WIRE_EINVAL);
}
