/*
 * test_cli.c -- the `wirecore` tool, run as a process on files in a
 * temporary directory: verdict lines, exit codes, JSON Lines, MessagePack.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
