/*
 * schema_bench.c -- throughput of the JSON Schema validator and the
 * dispatcher on one core: validations per second for a chat-message schema
 * (valid and invalid instances), decode + validate from JSON bytes, and
 * dispatch among 8 handler schemas with and without a discriminator.
 * Prints a markdown table. Usage: schema_bench [seconds per row, default 0.5]
 * Rates are per second of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID),
 * so time the thread spends descheduled on a busy machine does not count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wirecore.h"

static const char *chat_schema =
    "{\"type\":\"object\",\"required\":[\"type\",\"room\",\"user\",\"text\"],"
    "\"properties\":{"
    "\"type\":{\"const\":\"chat\"},"
    "\"room\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9-]{1,32}$\"},"
    "\"user\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
    "\"text\":{\"type\":\"string\",\"maxLength\":4096},"
    "\"mood\":{\"enum\":[\"happy\",\"sad\",\"neutral\"]},"
    "\"ts\":{\"type\":\"integer\",\"minimum\":0}},"
    "\"additionalProperties\":false}";

static const char *valid_msg = "{\"type\":\"chat\",\"room\":\"lobby-1\",\"user\":\"ada\","
                               "\"text\":\"hello there, how is everyone?\",\"mood\":\"happy\","
                               "\"ts\":1732240000}";
/* fails late: the last property breaks its enum */
static const char *invalid_msg = "{\"type\":\"chat\",\"room\":\"lobby-1\",\"user\":\"ada\","
                                 "\"text\":\"hello there, how is everyone?\",\"ts\":1732240000,"
                                 "\"mood\":\"furious\"}";

static const char *kinds[8] = {"chat",  "join", "leave",  "typing",
                               "react", "edit", "delete", "ping"};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc, const wire_error *err) {
  fprintf(stderr, "%s failed: %s (%s)\n", what, wire_strerror(rc), err ? err->message : "");
  exit(1);
}

static wire_schema *compile(const char *text) {
  wire_schema *s;
  wire_error err;
  int rc = wire_schema_compile(text, strlen(text), NULL, &s, &err);
  if (rc)
    die("compile", rc, &err);
  return s;
}

static const wire_value *decode(wire_doc *doc, const char *text) {
  const wire_value *v;
  wire_error err;
  int rc = wire_decode(doc, WIRE_CODEC_JSON, text, strlen(text), 0, &v, &err);
  if (rc)
    die("decode", rc, &err);
  return v;
}

typedef enum { VALIDATE, VALIDATE_ERR, DECODE_VALIDATE, DISPATCH } op_kind;

typedef struct job {
  op_kind kind;
  const wire_schema *schema;
  const wire_dispatcher *disp;
  const wire_value *value;
  const char *json;
  wire_doc *doc;
  int expect; /* expected return code */
} job;

static volatile size_t sink;

/* Run `job` in batches for `secs` seconds, best of three; ops per second. */
static double measure(const job *j, double secs) {
  double best = 0;
  for (int round = 0; round < 3; round++) {
    size_t ops = 0;
    double t0 = now(), t1;
    do {
      for (int i = 0; i < 1000; i++) {
        int rc;
        wire_error err;
        size_t idx = 0;
        switch (j->kind) {
        case VALIDATE:
          rc = wire_schema_validate(j->schema, j->value, NULL);
          break;
        case VALIDATE_ERR:
          rc = wire_schema_validate(j->schema, j->value, &err);
          break;
        case DECODE_VALIDATE: {
          const wire_value *v;
          wire_doc_reset(j->doc);
          rc = wire_decode(j->doc, WIRE_CODEC_JSON, j->json, strlen(j->json), 0, &v, NULL);
          if (rc == 0)
            rc = wire_schema_validate(j->schema, v, NULL);
          break;
        }
        default:
          rc = wire_dispatch(j->disp, j->value, &idx, NULL);
          break;
        }
        if (rc != j->expect) {
          fprintf(stderr, "unexpected result %d\n", rc);
          exit(1);
        }
        sink += idx;
      }
      ops += 1000;
      t1 = now();
    } while (t1 - t0 < secs);
    double rate = (double)ops / (t1 - t0);
    if (rate > best)
      best = rate;
  }
  return best;
}

/* Eight handler schemas: with `tagged`, each pins "type" to its own const;
 * without, each is told apart by a differently named required property. */
static void handler_schemas(wire_schema **out, int tagged) {
  for (int i = 0; i < 8; i++) {
    char text[512];
    if (tagged)
      snprintf(text, sizeof text,
               "{\"type\":\"object\",\"required\":[\"type\",\"room\",\"%s_body\"],"
               "\"properties\":{\"type\":{\"const\":\"%s\"},\"room\":{\"type\":\"string\"},"
               "\"%s_body\":{\"type\":\"string\",\"maxLength\":1000}}}",
               kinds[i], kinds[i], kinds[i]);
    else
      snprintf(text, sizeof text,
               "{\"type\":\"object\",\"required\":[\"room\",\"%s_body\"],"
               "\"properties\":{\"room\":{\"type\":\"string\"},"
               "\"%s_body\":{\"type\":\"string\",\"maxLength\":1000}}}",
               kinds[i], kinds[i]);
    out[i] = compile(text);
  }
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  if (secs <= 0)
    secs = 0.5;
  wire_doc *doc, *work;
  if (wire_doc_new(&doc) || wire_doc_new(&work))
    die("wire_doc_new", WIRE_ENOMEM, NULL);
  wire_schema *chat = compile(chat_schema);
  const wire_value *good = decode(doc, valid_msg), *bad = decode(doc, invalid_msg);

  wire_schema *tagged[8], *plain[8];
  handler_schemas(tagged, 1);
  handler_schemas(plain, 0);
  wire_dispatcher *dt, *dp;
  if (wire_dispatcher_new((const wire_schema *const *)tagged, 8, &dt) ||
      wire_dispatcher_new((const wire_schema *const *)plain, 8, &dp))
    die("wire_dispatcher_new", WIRE_ENOMEM, NULL);
  if (wire_dispatcher_discriminator(dt) == NULL || wire_dispatcher_discriminator(dp) != NULL) {
    fprintf(stderr, "discriminator detection is not what the benchmark expects\n");
    return 1;
  }
  /* the last handler: the sequential dispatcher tries all eight */
  const wire_value *last_tagged =
      decode(doc, "{\"type\":\"ping\",\"room\":\"lobby\",\"ping_body\":\"are you there?\"}");
  const wire_value *last_plain =
      decode(doc, "{\"room\":\"lobby\",\"ping_body\":\"are you there?\"}");
  const wire_value *first_plain = decode(doc, "{\"room\":\"lobby\",\"chat_body\":\"hi\"}");

  struct row {
    const char *name;
    job j;
  } rows[] = {
      {"validate chat message, valid", {VALIDATE, chat, NULL, good, NULL, NULL, 0}},
      {"validate chat message, invalid (no err)",
       {VALIDATE, chat, NULL, bad, NULL, NULL, WIRE_EVALIDATION}},
      {"validate chat message, invalid (with err)",
       {VALIDATE_ERR, chat, NULL, bad, NULL, NULL, WIRE_EVALIDATION}},
      {"decode JSON + validate, valid", {DECODE_VALIDATE, chat, NULL, NULL, valid_msg, work, 0}},
      {"dispatch 8 schemas, discriminator", {DISPATCH, NULL, dt, last_tagged, NULL, NULL, 0}},
      {"dispatch 8 schemas, sequential, first", {DISPATCH, NULL, dp, first_plain, NULL, NULL, 0}},
      {"dispatch 8 schemas, sequential, last", {DISPATCH, NULL, dp, last_plain, NULL, NULL, 0}},
  };
  printf("| operation | ops/s (one core) | ns/op |\n|---|---:|---:|\n");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    double rate = measure(&rows[i].j, secs);
    printf("| %s | %.2fM | %.0f |\n", rows[i].name, rate / 1e6, 1e9 / rate);
    fflush(stdout);
  }
  printf("\nvalid message: %zu bytes of JSON\n", strlen(valid_msg));
  wire_dispatcher_free(dt);
  wire_dispatcher_free(dp);
  for (int i = 0; i < 8; i++) {
    wire_schema_free(tagged[i]);
    wire_schema_free(plain[i]);
  }
  wire_schema_free(chat);
  wire_doc_free(work);
  wire_doc_free(doc);
  return 0;
}
