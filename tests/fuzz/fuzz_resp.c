/*
 * fuzz_resp.c -- libFuzzer target for what the broker reads from outside:
 * Redis URLs (redis_url.c), envelopes (broker.c), and whole deliveries from
 * the backplane through wire_broker_deliver (envelope, then the MessagePack
 * of a value envelope) on a server with a no-op engine. The first input byte
 * picks the path; the rest is the input.
 */
#include "broker.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int e_publish(void *impl, const char *t, size_t n, const void *env, size_t len) {
  return 0;
}
static void e_topic(void *impl, const char *t, size_t n, int subscribed) {}
static void e_close(void *impl) {}
static void e_free(void *impl) {}
static const wire_broker_engine engine = {e_publish, e_topic, e_close, e_free};

static wire_server *server(void) {
  static wire_server *s;
  if (s == NULL && wire_server_new(NULL, &s) == 0)
    wire_server_set_broker(s, &engine, NULL);
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0: {
    char *url = malloc(n + 1);
    if (url == NULL)
      return 0;
    memcpy(url, p, n);
    url[n] = 0;
    wire__redis_url u;
    if (wire__redis_url_parse(url, &u, NULL) == 0) {
      volatile size_t sum = strlen(u.host) + (u.user ? strlen(u.user) : 0) +
                            (u.password ? strlen(u.password) : 0) + (size_t)u.port;
      (void)sum;
      wire__redis_url_free(&u);
    }
    free(url);
    break;
  }
  case 1: {
    uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
    if (copy == NULL)
      return 0;
    memcpy(copy, p, n);
    wire__envelope e;
    if (wire__envelope_parse(copy, n, &e) == 0 && e.len > 0) {
      volatile uint8_t last = e.payload[e.len - 1];
      (void)last;
    }
    free(copy);
    break;
  }
  default: {
    wire_server *s = server();
    /* the first bytes name the topic: 1..16 bytes */
    size_t tl = n ? 1 + p[0] % 16 : 0;
    if (s == NULL || tl == 0 || n < 1 + tl)
      return 0;
    uint8_t *copy = malloc(n - 1 - tl + 1);
    if (copy == NULL)
      return 0;
    memcpy(copy, p + 1 + tl, n - 1 - tl);
    wire_broker_deliver(s, (const char *)p + 1, tl, copy, n - 1 - tl);
    free(copy);
    break;
  }
  }
  return 0;
}
