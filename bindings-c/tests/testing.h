/* A few assertion macros for the C tests: each failed check prints where
 * and why and is counted; main() returns non-zero if any failed. */
#ifndef OC2_TESTING_H
#define OC2_TESTING_H

#include <stdio.h>
#include <string.h>

#include "oc2mqtt.h"

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                              \
    do {                                                                         \
        test_checks++;                                                           \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define CHECK_RC(expr, want)                                                     \
    do {                                                                         \
        oc2_result rc_ = (expr);                                                 \
        test_checks++;                                                           \
        if (rc_ != (oc2_result)(want)) {                                         \
            fprintf(stderr, "%s:%d: %s returned %u, expected %s (%u)\n", __FILE__, \
                    __LINE__, #expr, (unsigned)rc_, #want, (unsigned)(want));    \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

/* An oc2_str equal to a C string, and NUL-terminated as promised. */
#define CHECK_STR(s, want)                                                       \
    do {                                                                         \
        oc2_str s_ = (s);                                                        \
        const char *w_ = (want);                                                 \
        test_checks++;                                                           \
        if (s_.data == NULL || s_.len != strlen(w_) || memcmp(s_.data, w_, s_.len) != 0 || \
            s_.data[s_.len] != 0) {                                              \
            fprintf(stderr, "%s:%d: got '%.*s', expected '%s'\n", __FILE__, __LINE__, \
                    s_.data ? (int)s_.len : 6, s_.data ? s_.data : "(null)", w_); \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define RUN(test)                                                                \
    do {                                                                         \
        int before_ = test_failures;                                             \
        test();                                                                  \
        printf("%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #test);   \
    } while (0)

#define TEST_SUMMARY(name)                                                       \
    (printf("%s: %d checks, %d failed\n", name, test_checks, test_failures), test_failures ? 1 : 0)

#endif
