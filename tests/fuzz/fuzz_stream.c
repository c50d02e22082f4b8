/*
 * fuzz_stream.c -- libFuzzer target for the shared history's input side
 * (history.c, broker.c): announcements from the backplane
 * ("\xFFH<epoch>:<seq> <json>", or any bytes) through wire_broker_deliver,
 * and stream entries a fetch returns (in any order, any epoch, any JSON)
 * through a channel confirmation, on a server with a history rule and an
 * engine whose fetch answers from the input. Whatever arrives, the history
 * must stay consistent (its ring holds consecutive numbers ending at seq).
 */
#include "broker.h"
#include "conn_internal.h"
#include "history.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int e_publish(void *impl, const char *t, size_t n, const void *env, size_t len) {
  return 0;
}
static void e_topic(void *impl, const char *t, size_t n, int subscribed) {}
static void e_close(void *impl) {}
static void e_free(void *impl) {}
static const wire_broker_engine engine = {e_publish, e_topic, e_close, e_free};

/* What the next fetch returns, from the input. */
static uint64_t f_epoch, f_seq;
static wire__hitem f_items[16];
static size_t f_n;
static int f_fail;

static int h_publish(void *impl, const char *t, size_t n, const void *json, size_t len,
                     unsigned maxlen, uint64_t ttl_ms) {
  return 0;
}

static int h_fetch(void *impl, const char *t, size_t n, uint64_t epoch, uint64_t after,
                   unsigned count, uint64_t ttl_ms, wire__hfetch *out) {
  memset(out, 0, sizeof *out);
  if (f_fail)
    return WIRE_ECLOSED;
  out->epoch = f_epoch;
  out->seq = f_seq;
  out->items = malloc(sizeof f_items);
  if (out->items == NULL)
    return WIRE_ENOMEM;
  memcpy(out->items, f_items, sizeof f_items);
  out->n = f_n;
  return 0;
}

static void h_fetch_free(wire__hfetch *f) {
  free(f->items);
}

static const wire__hops hops = {h_publish, h_fetch, h_fetch_free};

static wire_server *server(void) {
  static wire_server *s;
  if (s == NULL && wire_server_new(NULL, &s) == 0) {
    wire_server_set_broker(s, &engine, NULL);
    wire_server_topic_history(s, "*", 1, 8, 0);
    s->broker->hops = &hops;
  }
  return s;
}

static const char *const jsons[] = {"1", "\"x\"", "{\"a\":[1,2]}", "nul", "", "[1,"};

/* The ring of every history holds seq - count + 1 .. seq. */
static void check(wire_server *s) {
  if (!wire__history_has(s, "t", 1))
    return;
  wire__hist *h;
  if (wire__history_get(s, "t", 1, 0, &h) != 0 || h == NULL)
    return;
  if (h->count > h->seq)
    abort();
  for (uint32_t i = 0; i < h->count; i++)
    if (h->ring[(h->head + i) % h->cap].seq != h->seq - h->count + 1 + i)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wire_server *s = server();
  if (s == NULL)
    return 0;
  char buf[256];
  size_t i = 0;
  while (i + 3 <= size) {
    uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
    i += 3;
    switch (op % 4) {
    case 0: { /* an announcement built from small numbers */
      int n = snprintf(buf, sizeof buf, "\xFFH%016llx:%u %s", (unsigned long long)(a % 3),
                       (unsigned)b % 24, jsons[(a >> 2) % 6]);
      wire_broker_deliver(s, "t", 1, buf, (size_t)n);
      break;
    }
    case 1: { /* raw bytes as an announcement */
      size_t n = a % 64;
      if (n > size - i)
        n = size - i;
      uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any overread */
      if (copy == NULL)
        return 0;
      memcpy(copy, data + i, n);
      if (n >= 2) {
        copy[0] = 0xFF;
        copy[1] = 'H';
      }
      wire_broker_deliver(s, "t", 1, copy, n);
      free(copy);
      i += n;
      break;
    }
    case 2: { /* the next fetch's answer: epoch, seq, then b % 8 entries */
      f_epoch = a % 3;
      f_seq = b % 24;
      f_fail = (a & 0x80) != 0;
      f_n = 0;
      for (size_t k = 0; k < (size_t)(b >> 5) && i < size && f_n < 16; k++, i++) {
        f_items[f_n].seq = data[i] % 24;
        f_items[f_n].json = jsons[(data[i] >> 5) % 6];
        f_items[f_n].len = strlen(f_items[f_n].json);
        f_n++;
      }
      break;
    }
    default: /* the channel is (re)subscribed: load or catch up */
      wire__broker_subscribed(s, "t", 1);
      break;
    }
    check(s);
  }
  return 0;
}
