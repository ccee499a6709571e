/* tests/fuzz/fuzz.h: the bodies of the libFuzzer harnesses, as plain
 * functions.
 *
 * Each fuzz_<name>.c defines int fuzz_<name>(const uint8_t *, size_t);
 * built with -DHALLQ_LIBFUZZER it also defines LLVMFuzzerTestOneInput,
 * which calls it. The cmocka test tests/unit/test_fuzz_regress.c compiles
 * the same files without that define and replays every saved input
 * (tests/fuzz/regress/<name>/ and the seed corpus) through them, so a
 * crash found once stays a test in the normal build.
 *
 * A harness returns 0. A broken invariant is reported on stderr and
 * aborts: libFuzzer saves the input as a crash, and the unit test fails. */
#ifndef HALLQ_FUZZ_H
#define HALLQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int fuzz_frame(const uint8_t *data, size_t size);
int fuzz_request(const uint8_t *data, size_t size);
int fuzz_config(const uint8_t *data, size_t size);
int fuzz_exec(const uint8_t *data, size_t size);

/* Checks an invariant of the code under test (not of the input). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
