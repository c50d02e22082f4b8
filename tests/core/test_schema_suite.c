/*
 * test_schema_suite.c -- the official JSON Schema Test Suite (draft 2020-12)
 * against wire_schema_compile_value / wire_schema_validate. Remotes are served
 * from remotes/ by the resolver callback (http://localhost:1234/<path>).
 * Required tests must all pass; optional/ and optional/format/ (with format
 * assertion on) are counted and printed only.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wirecore.h"

#define REQUIRED_TESTS 1299

static char suite_dir[1024];

static bool find_suite(void) {
  const char *root = getenv("WIRE_TESTDATA");
  const char *cands[] = {root && *root ? root : NULL, WIRE_SOURCE_DIR "/../shared/testdata",
                         WIRE_SOURCE_DIR "/../../shared/testdata"};
  for (size_t i = 0; i < 3; i++) {
    if (cands[i] == NULL)
      continue;
    snprintf(suite_dir, sizeof suite_dir, "%s/json-schema-test-suite", cands[i]);
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/tests/draft2020-12", suite_dir);
    DIR *d = opendir(probe);
    if (d) {
      closedir(d);
      return true;
    }
  }
  return false;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  buf[got] = 0;
  *len = got;
  return buf;
}

/* Documents handed out during one compile, freed after it. */
typedef struct served {
  char *bufs[64];
  int n;
} served;

static const char *resolve(const char *uri, size_t *len, void *user_data) {
  served *s = user_data;
  static const char prefix[] = "http://localhost:1234/";
  if (strncmp(uri, prefix, sizeof prefix - 1) != 0 || s->n == 64)
    return NULL;
  char path[2048];
  snprintf(path, sizeof path, "%s/remotes/%s", suite_dir, uri + sizeof prefix - 1);
  char *text = slurp(path, len);
  if (text)
    s->bufs[s->n++] = text;
  return text;
}

typedef struct tally {
  int passed, failed;
} tally;

static const wire_value *get(const wire_value *o, const char *key) {
  return wire_value_get(o, key, strlen(key));
}

/* Run every group of one file; print one line per file and each failure. */
static void run_file(const char *path, const char *name, unsigned flags, tally *total,
                     bool verbose) {
  size_t len;
  char *text = slurp(path, &len);
  cr_assert_not_null(text, "cannot read %s", path);
  wire_doc *doc;
  cr_assert_eq(wire_doc_new(&doc), 0);
  const wire_value *groups;
  wire_error err;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, text, len, 0, &groups, &err), 0, "%s: %s", path,
               err.message);
  tally t = {0, 0};
  for (size_t g = 0; g < wire_value_size(groups); g++) {
    const wire_value *group = wire_value_at(groups, g);
    const wire_value *tests = get(group, "tests");
    served sv = {.n = 0};
    wire_schema_options opts = {flags, resolve, &sv};
    wire_schema *schema = NULL;
    memset(&err, 0, sizeof err);
    int rc = wire_schema_compile_value(get(group, "schema"), &opts, &schema, &err);
    for (int i = 0; i < sv.n; i++)
      free(sv.bufs[i]);
    for (size_t i = 0; i < wire_value_size(tests); i++) {
      const wire_value *test = wire_value_at(tests, i);
      bool want = wire_value_bool(get(test, "valid"));
      bool ok;
      wire_error verr;
      memset(&verr, 0, sizeof verr);
      if (rc != 0) {
        ok = false;
      } else {
        int vr = wire_schema_validate(schema, get(test, "data"), &verr);
        /* also run without an error struct: the fast path must agree */
        int vr2 = wire_schema_validate(schema, get(test, "data"), NULL);
        ok = (vr == 0) == want && vr == vr2;
      }
      if (ok) {
        t.passed++;
      } else {
        t.failed++;
        if (verbose)
          printf("  FAIL %s | %s | %s%s%s\n", name,
                 wire_value_string(get(group, "description"), NULL),
                 wire_value_string(get(test, "description"), NULL), rc ? " | compile error: " : "",
                 rc ? err.message : "");
      }
    }
    wire_schema_free(schema);
  }
  printf("%-40s %4d/%-4d passed\n", name, t.passed, t.passed + t.failed);
  total->passed += t.passed;
  total->failed += t.failed;
  wire_doc_free(doc);
  free(text);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every *.json file of `sub` (sorted), returning the tally. */
static tally run_dir(const char *sub, unsigned flags, bool verbose) {
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/tests/draft2020-12%s", suite_dir, sub);
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "cannot open %s", dir);
  char *names[128];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 128) {
    size_t l = strlen(e->d_name);
    if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
      names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], cmp_names);
  tally total = {0, 0};
  for (int i = 0; i < n; i++) {
    char path[1500], label[300];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    snprintf(label, sizeof label, "%s%s%s", sub[0] ? sub + 1 : "", sub[0] ? "/" : "", names[i]);
    run_file(path, label, flags, &total, verbose);
    free(names[i]);
  }
  return total;
}

Test(schema_suite, passes_every_required_draft2020_12_test) {
  if (!find_suite())
    cr_skip_test("json-schema-test-suite not found beside the repository");
  tally t = run_dir("", 0, true);
  printf("required: %d/%d tests passed\n", t.passed, t.passed + t.failed);
  fflush(stdout);
  cr_expect_eq(t.passed + t.failed, REQUIRED_TESTS, "the suite should hold %d tests",
               REQUIRED_TESTS);
  cr_assert_eq(t.failed, 0, "%d required tests failed", t.failed);
}

Test(schema_suite, reports_optional_and_format_tests) {
  if (!find_suite())
    cr_skip_test("json-schema-test-suite not found beside the repository");
  bool verbose = getenv("WIRE_SCHEMA_SUITE_VERBOSE") != NULL;
  tally o = run_dir("/optional", 0, verbose);
  printf("optional: %d/%d tests passed\n", o.passed, o.passed + o.failed);
  tally f = run_dir("/optional/format", WIRE_SCHEMA_FORMAT_ASSERT, verbose);
  printf("optional/format (assertion on): %d/%d tests passed\n", f.passed, f.passed + f.failed);
  fflush(stdout);
  cr_assert_gt(o.passed + f.passed, 0);
}
