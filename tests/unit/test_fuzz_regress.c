/* tests/unit/test_fuzz_regress.c: replays the fuzzers' saved inputs.
 *
 * Every input that once crashed a fuzzer (or broke one of its checks) is
 * kept under tests/fuzz/regress/<name>/, and runs here through the very
 * function the fuzzer calls (tests/fuzz/fuzz_<name>.c, compiled into this
 * test without libFuzzer). The seed corpus runs too, so the harnesses
 * themselves stay built and working in the normal build. A harness aborts
 * on a broken invariant; under tools/test.sh --sanitize, ASan and UBSan
 * report what the fuzzer build would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/hall/config.h"
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*harness_fn)(const uint8_t *, size_t);

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    uint8_t *p = malloc(cap);
    assert_non_null(p);
    size_t k;
    while ((k = fread(p + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            p = realloc(p, cap *= 2);
            assert_non_null(p);
        }
    }
    assert_int_equal(ferror(f), 0);
    fclose(f);
    *len = n;
    return p;
}

/* Runs every file in tests/fuzz/<kind>/<name>/ through fn; returns how
 * many ran. A missing directory is none (no crash found yet). */
static int replay(const char *kind, const char *name, harness_fn fn)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", HALLQ_SOURCE_DIR, kind, name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        uint8_t *p = read_all(path, &len);
        print_message("%s/%s/%s (%zu bytes)\n", kind, name, de->d_name, len);
        assert_int_equal(fn(p, len), 0);
        free(p);
        count++;
    }
    closedir(d);
    return count;
}

static void test_regress_frame(void **state)
{
    (void)state;
    replay("regress", "frame", fuzz_frame);
}

static void test_regress_request(void **state)
{
    (void)state;
    replay("regress", "request", fuzz_request);
}

static void test_regress_exec(void **state)
{
    (void)state;
    replay("regress", "exec", fuzz_exec);
}

static void test_regress_config(void **state)
{
    (void)state;
    replay("regress", "config", fuzz_config);
}

/* The seeds: each harness has some, and they run clean. */
static void test_corpus(void **state)
{
    (void)state;
    assert_true(replay("corpus", "frame", fuzz_frame) > 10);
    assert_true(replay("corpus", "request", fuzz_request) > 10);
    assert_true(replay("corpus", "config", fuzz_config) > 10);
    assert_true(replay("corpus", "exec", fuzz_exec) > 50);
}

/* The config seeds start from a hall that parses: a seed the parser
 * refuses at once would only fuzz its first error. */
static void test_corpus_config_parses(void **state)
{
    (void)state;
    static const char *const good[] = {"demo-hall", "minimal",      "minimal-flow", "anchors",
                                       "calendar",  "rules-limits", "listeners"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/config/%s", HALLQ_SOURCE_DIR, good[i]);
        size_t len;
        uint8_t *p = read_all(path, &len);
        hall_config *c = NULL;
        char err[256] = "";
        int rc = hall_config_parse((const char *)p, len, good[i], &c, err, sizeof err);
        if (rc != 0)
            fail_msg("%s", err);
        hall_config_free(c);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regress_frame),  cmocka_unit_test(test_regress_request),
        cmocka_unit_test(test_regress_config), cmocka_unit_test(test_regress_exec),
        cmocka_unit_test(test_corpus),         cmocka_unit_test(test_corpus_config_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
