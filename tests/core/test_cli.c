/*
 * test_cli.c -- the `wirecore` tool, run as a process on files in a
 * temporary directory: verdict lines, exit codes, JSON Lines, MessagePack,
 * escaping, remote references (cases from the JSON Schema Test Suite).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wirecore.h"

static char dir[64];

static void setup(void) {
  strcpy(dir, "/tmp/wirecore-cli-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(cli, .init = setup, .fini = teardown);

static void put(const char *name, const void *data, size_t len) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fwrite(data, 1, len, f);
  fclose(f);
}
#define PUT(name, lit) put(name, lit, sizeof(lit) - 1)

/* Run `wirecore ARGS` in the temp dir; stdout (and stderr) into the
 * buffers; returns the exit status. */
static int run(const char *args, char *out, size_t out_cap, char *errbuf, size_t err_cap) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s/wirecore' %s 2>stderr.txt", dir, WIRE_BINARY_DIR, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, out_cap - 1, p);
  out[n] = 0;
  int status = pclose(p);
  char path[256];
  snprintf(path, sizeof path, "%s/stderr.txt", dir);
  FILE *e = fopen(path, "r");
  n = e ? fread(errbuf, 1, err_cap - 1, e) : 0;
  errbuf[n] = 0;
  if (e)
    fclose(e);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define SCHEMA                                                                                     \
  "{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"a\":{\"type\":\"integer\"}}}"

Test(cli, prints_the_version_and_help) {
  char out[4096], err[4096];
  cr_assert_eq(run("--version", out, sizeof out, err, sizeof err), 0);
  cr_assert(strncmp(out, "wirecore 0.", 11) == 0, "%s", out);
  cr_assert_eq(run("--help", out, sizeof out, err, sizeof err), 0);
  cr_assert(strstr(out, "validate --schema") != NULL);
  cr_assert_eq(run("frobnicate", out, sizeof out, err, sizeof err), 2);
  cr_assert_eq(run("validate a.json", out, sizeof out, err, sizeof err), 2);
}

Test(cli, exits_0_when_every_instance_is_valid) {
  char out[4096], err[4096];
  PUT("s.json", SCHEMA);
  PUT("ok.json", "{\"a\":1}");
  PUT("ok.msgpack", "\x81\xa1"
                    "a\x05");
  cr_assert_eq(run("validate --schema s.json ok.json ok.msgpack", out, sizeof out, err, sizeof err),
               0, "%s", err);
  cr_assert_str_eq(out, "valid\nvalid\n");
}

Test(cli, exits_1_and_names_pointer_and_keyword_for_invalid_instances) {
  char out[4096], err[4096];
  PUT("s.json", SCHEMA);
  PUT("ok.json", "{\"a\":1}");
  PUT("bad.json", "{\"a\":\"x\"}");
  cr_assert_eq(run("validate --schema s.json ok.json bad.json", out, sizeof out, err, sizeof err),
               1);
  cr_assert(strncmp(out, "valid\ninvalid /a type: ", 23) == 0, "%s", out);
}

Test(cli, exits_2_and_says_where_an_instance_cannot_be_decoded) {
  char out[4096], err[4096];
  PUT("s.json", SCHEMA);
  PUT("bad.json", "{\"a\":\"x\"}");
  PUT("broken.json", "{\"a\":1,}");
  PUT("broken.msgpack", "\x81\xa1");
  cr_assert_eq(run("validate --schema s.json bad.json broken.json broken.msgpack", out, sizeof out,
                   err, sizeof err),
               2);
  cr_assert(strncmp(out, "invalid /a type", 15) == 0, "%s", out);
  cr_assert(strstr(err, "broken.json: JSON: expected string key at byte 7") != NULL, "%s", err);
  cr_assert(strstr(err, "broken.msgpack: MessagePack: ") != NULL, "%s", err);
  cr_assert_eq(run("validate --schema s.json missing.json", out, sizeof out, err, sizeof err), 2);
  cr_assert(strstr(err, "missing.json") != NULL);
}

Test(cli, validates_json_lines_one_verdict_per_line) {
  char out[4096], err[4096];
  PUT("s.json", SCHEMA);
  PUT("in.jsonl", "{\"a\":1}\n{\"a\":2.5}\r\n{}\n");
  cr_assert_eq(run("validate --schema s.json --lines in.jsonl", out, sizeof out, err, sizeof err),
               1);
  cr_assert(strncmp(out, "valid\ninvalid /a type: ", 23) == 0, "%s", out);
  cr_assert(strstr(out, "\ninvalid  required: ") != NULL, "%s", out);
  PUT("broken.jsonl", "1\n[\n2\n");
  cr_assert_eq(run("validate --schema true --lines broken.jsonl", out, sizeof out, err, sizeof err),
               2);
  cr_assert_str_eq(out, "valid\nvalid\n");
  cr_assert(strstr(err, "broken.jsonl:2: JSON: unexpected end of input at byte 1") != NULL, "%s",
            err);
}

Test(cli, reads_json_lines_from_stdin_and_inline_schemas) {
  char out[4096], err[4096];
  PUT("in.jsonl", "{\"a\":1}\n\"x\"\n");
  cr_assert_eq(run("validate --schema '{\"type\":\"object\"}' --lines - < in.jsonl", out,
                   sizeof out, err, sizeof err),
               1);
  cr_assert(strncmp(out, "valid\ninvalid  type: ", 21) == 0, "%s", out);
}

Test(cli, exits_2_for_a_schema_that_is_not_json_or_not_a_schema) {
  char out[4096], err[4096];
  PUT("ok.json", "{}");
  cr_assert_eq(run("validate --schema '{\"type\":' ok.json", out, sizeof out, err, sizeof err), 2);
  cr_assert(strstr(err, "schema (inline): JSON: ") != NULL, "%s", err);
  cr_assert_eq(run("validate --schema '{\"type\":5}' ok.json", out, sizeof out, err, sizeof err),
               2);
  cr_assert_str_eq(out, "");
}

Test(cli, escapes_control_characters_backslashes_and_pointer_spaces) {
  char out[4096], err[4096];
  PUT("s.json", "{\"properties\":{\"a b\\tc\\\\\":{\"type\":\"string\"}}}");
  PUT("bad.json", "{\"a b\\tc\\\\\":1}");
  cr_assert_eq(run("validate --schema s.json bad.json", out, sizeof out, err, sizeof err), 1);
  cr_assert_str_eq(out, "invalid /a\\u0020b\\tc\\\\ type: expected string, got integer\n");
  PUT("bad\ttab.json", "[");
  cr_assert_eq(run("validate --schema s.json 'bad\ttab.json'", out, sizeof out, err, sizeof err),
               2);
  cr_assert(strstr(err, "wirecore: bad\\ttab.json: JSON: ") != NULL, "%s", err);
}

/* ---- cases from the official JSON Schema Test Suite (draft 2020-12) ---- */

static char suite_dir[1024];

/* The suite's directory: $WIRE_TESTDATA, or ../shared/testdata beside the
 * source tree. Fails the test when it is nowhere. */
static const char *suite(void) {
  const char *root = getenv("WIRE_TESTDATA");
  const char *cands[] = {root && *root ? root : NULL, WIRE_SOURCE_DIR "/../shared/testdata",
                         WIRE_SOURCE_DIR "/../../shared/testdata"};
  for (size_t i = 0; i < 3; i++) {
    if (cands[i] == NULL)
      continue;
    snprintf(suite_dir, sizeof suite_dir, "%s/json-schema-test-suite", cands[i]);
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/remotes/integer.json", suite_dir);
    if (access(probe, R_OK) == 0)
      return suite_dir;
  }
  cr_assert_fail("the JSON Schema Test Suite is missing (set WIRE_TESTDATA)");
  return NULL;
}

static const wire_value *get(const wire_value *o, const char *key) {
  return wire_value_get(o, key, strlen(key));
}

static void put_value(FILE *f, wire_doc *doc, const wire_value *v) {
  const uint8_t *bytes;
  size_t len;
  cr_assert_eq(wire_encode(doc, WIRE_CODEC_JSON, v, &bytes, &len, NULL), 0);
  fwrite(bytes, 1, len, f);
}

/* Write group `g` (or every group when g < 0) of tests/draft2020-12/FILE as
 * schema files s0.json, s1.json... and instance files c0.jsonl, c1.jsonl...
 * (one test per line); `want` gets, per group, "valid"/"invalid" per test
 * separated by spaces. Returns the number of groups written. */
static int put_suite_groups(const char *file, int g, char want[][512]) {
  char path[1200];
  snprintf(path, sizeof path, "%s/tests/draft2020-12/%s", suite(), file);
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  static char text[1 << 20];
  size_t len = fread(text, 1, sizeof text, f);
  fclose(f);
  wire_doc *doc;
  cr_assert_eq(wire_doc_new(&doc), 0);
  const wire_value *groups;
  cr_assert_eq(wire_decode(doc, WIRE_CODEC_JSON, text, len, 0, &groups, NULL), 0);
  int n = 0;
  for (size_t i = 0; i < wire_value_size(groups); i++) {
    if (g >= 0 && (size_t)g != i)
      continue;
    const wire_value *group = wire_value_at(groups, i);
    char name[256];
    snprintf(name, sizeof name, "%s/s%d.json", dir, n);
    FILE *s = fopen(name, "wb");
    cr_assert_not_null(s);
    put_value(s, doc, get(group, "schema"));
    fclose(s);
    snprintf(name, sizeof name, "%s/c%d.jsonl", dir, n);
    FILE *c = fopen(name, "wb");
    cr_assert_not_null(c);
    const wire_value *tests = get(group, "tests");
    want[n][0] = 0;
    for (size_t t = 0; t < wire_value_size(tests); t++) {
      put_value(c, doc, get(wire_value_at(tests, t), "data"));
      fputc('\n', c);
      strcat(want[n],
             wire_value_bool(get(wire_value_at(tests, t), "valid")) ? "valid " : "invalid ");
    }
    fclose(c);
    n++;
  }
  wire_doc_free(doc);
  return n;
}

/* The verdict words of `out` ("valid"/"invalid", the first word of each
 * line), each followed by a space. */
static void verdicts(const char *out, char *words, size_t cap) {
  words[0] = 0;
  for (const char *line = out; *line;) {
    const char *end = strchr(line, '\n');
    cr_assert_not_null(end, "unterminated line in %s", out);
    strncat(words, strncmp(line, "valid\n", 6) == 0 ? "valid " : "invalid ",
            cap - strlen(words) - 1);
    line = end + 1;
  }
}

Test(cli, keeps_one_line_per_instance_for_the_suites_escaped_dependent_required_case) {
  char out[4096], err[4096], want[1][512], got[512];
  /* dependentRequired.json, group 3: "dependencies with escaped characters" */
  cr_assert_eq(put_suite_groups("dependentRequired.json", 3, want), 1);
  cr_assert_eq(run("validate --schema s0.json --lines c0.jsonl", out, sizeof out, err, sizeof err),
               1, "%s", err);
  verdicts(out, got, sizeof got);
  cr_assert_str_eq(got, want[0], "%s", out);
  cr_assert_str_eq(got, "valid valid invalid invalid ");
  cr_assert(strstr(out, "\ninvalid  dependentRequired: property \"foo\\nbar\" requires property "
                        "\"foo\\rbar\"\n") != NULL,
            "%s", out);
}

Test(cli, resolves_remote_references_from_files_with_remote) {
  char out[8192], err[4096], want[64][512], got[512], args[2048];
  int n = put_suite_groups("refRemote.json", -1, want);
  cr_assert_gt(n, 10);
  for (int g = 0; g < n; g++) {
    snprintf(
        args, sizeof args,
        "validate --remote http://localhost:1234=%s/remotes --schema s%d.json --lines c%d.jsonl",
        suite(), g, g);
    int status = run(args, out, sizeof out, err, sizeof err);
    cr_assert(status == 0 || status == 1, "group %d: exit %d: %s", g, status, err);
    verdicts(out, got, sizeof got);
    cr_assert_str_eq(got, want[g], "group %d: %s", g, out);
  }
  /* without the mapping the first group's reference is unknown */
  cr_assert_eq(run("validate --schema s0.json --lines c0.jsonl", out, sizeof out, err, sizeof err),
               2);
  cr_assert(strstr(err, "unknown document http://localhost:1234/") != NULL, "%s", err);
}

Test(cli, says_why_a_remote_cannot_be_used) {
  char out[4096], err[4096];
  PUT("s.json", "{\"$ref\":\"http://example.com/schemas/a.json\"}");
  PUT("i.json", "1");
  cr_assert_eq(run("validate --remote http://example.com/schemas --schema s.json i.json", out,
                   sizeof out, err, sizeof err),
               2);
  cr_assert(strstr(err, "--remote wants URI=DIR") != NULL, "%s", err);
  cr_assert_eq(run("validate --remote http://example.com/schemas=nowhere --schema s.json i.json",
                   out, sizeof out, err, sizeof err),
               2);
  cr_assert(strstr(err, "wirecore: nowhere/a.json: No such file or directory\n") != NULL, "%s",
            err);
  cr_assert(strstr(err, "unknown document http://example.com/schemas/a.json") != NULL, "%s", err);
  char here[128];
  snprintf(here, sizeof here, "%s/here", dir);
  cr_assert_eq(mkdir(here, 0700), 0);
  PUT("here/a.json", "{\"type\":\"integer\"}");
  cr_assert_eq(run("validate --remote http://example.com/schemas/=here --schema s.json i.json", out,
                   sizeof out, err, sizeof err),
               0, "%s", err);
  cr_assert_str_eq(out, "valid\n");
  /* repeatable: the first mapping whose URI matches is used */
  cr_assert_eq(run("validate --remote http://example.org/=nowhere --remote "
                   "http://example.com/schemas=here --remote http://example.com/=nowhere "
                   "--schema s.json i.json",
                   out, sizeof out, err, sizeof err),
               0, "%s", err);
  cr_assert_str_eq(out, "valid\n");
}
