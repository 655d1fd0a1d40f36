/* Runs every shared rule vector (tests/rules) through oc2_consumer_rules and
 * checks the same things as the Rust runner (core/tests/rules.rs): for each
 * step, why nothing runs, whether the command runs (and its command_id), the
 * responses published at once and those of the application's answer; each
 * response by its topics, dialect, msgType property, headers, status, status
 * text and results, read back by decoding its payload with its properties.
 *
 * Input: the manifest written by rules_manifest.py (see there). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oc2mqtt.h"

static int failures;
static char current[512];
static FILE *in;
static oc2_codec *codec;

#define FAIL(...)                                          \
    do {                                                   \
        fprintf(stderr, "FAIL %s: ", current);             \
        fprintf(stderr, __VA_ARGS__);                      \
        fputc('\n', stderr);                               \
        failures++;                                        \
    } while (0)

/* A decoded `x<hex>` token; `absent` for `-`, `unchecked` for `*`. */
typedef struct {
    char *data;
    size_t len;
    int absent, unchecked;
} field;

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    fprintf(stderr, "bad hex digit '%c' in manifest\n", c);
    exit(2);
}

static field parse_field(const char *tok) {
    field f = {0};
    if (strcmp(tok, "-") == 0) {
        f.absent = 1;
        return f;
    }
    if (strcmp(tok, "*") == 0) {
        f.unchecked = 1;
        return f;
    }
    if (tok[0] != 'x') {
        fprintf(stderr, "bad manifest token '%.20s'\n", tok);
        exit(2);
    }
    size_t n = strlen(tok + 1) / 2;
    f.data = malloc(n + 1);
    for (size_t i = 0; i < n; i++) f.data[i] = (char)(hex_digit(tok[1 + 2 * i]) << 4 | hex_digit(tok[2 + 2 * i]));
    f.data[n] = 0;
    f.len = n;
    return f;
}

static int str_eq(oc2_str s, const field *f) {
    return s.len == f->len && memcmp(s.data, f->data, s.len) == 0 && s.data[s.len] == 0;
}

static int split(char *line, char **tok, int max) {
    int n = 0;
    for (char *t = strtok(line, " \n"); t && n < max; t = strtok(NULL, " \n")) tok[n++] = t;
    return n;
}

/* The next manifest line, split; its own buffer, so the caller's tokens stay valid. */
static int next_line(char **buf, size_t *cap, char **tok, int max, const char *want) {
    if (getline(buf, cap, in) <= 0) {
        fprintf(stderr, "manifest ends early: expected '%s'\n", want);
        exit(2);
    }
    int n = split(*buf, tok, max);
    if (n == 0 || strcmp(tok[0], want) != 0) {
        fprintf(stderr, "manifest: expected '%s', found '%s'\n", want, n ? tok[0] : "");
        exit(2);
    }
    return n;
}

static const char *dialect_name(oc2_dialect d) {
    return d == OC2_DIALECT_SPEC ? "spec" : d == OC2_DIALECT_OTUPY ? "otupy" : d == OC2_DIALECT_BARE ? "bare" : "?";
}

/* A header that must equal `want`, or be absent when `want` is `-`. */
static void check_header(oc2_result rc, oc2_str got, const field *want, const char *at, const char *what) {
    if (want->absent) {
        if (rc != OC2_RESULT_ABSENT) FAIL("%s: headers.%s '%s', expected none", at, what, got.data);
    } else if (rc != OC2_RESULT_OK) {
        FAIL("%s: headers.%s absent, expected '%s'", at, what, want->data);
    } else if (!str_eq(got, want)) {
        FAIL("%s: headers.%s '%s', expected '%s'", at, what, got.data, want->data);
    }
}

/* Reads one `rsp` block (header tokens already split) and checks publish `p`
 * against it; `p` NULL: the count was already wrong, only consume the block. */
static void check_response(const oc2_publish *p, char **tok, const char *at) {
    long n_topics = atol(tok[1]);
    unsigned status = (unsigned)atol(tok[2]);
    char dialect[16];
    snprintf(dialect, sizeof dialect, "%s", tok[3]);
    field msg_type = parse_field(tok[4]), request_id = parse_field(tok[5]), from = parse_field(tok[6]);
    long n_to = strcmp(tok[7], "-") == 0 ? -1 : atol(tok[7]);
    field text = parse_field(tok[8]), results = parse_field(tok[9]);

    char *buf = NULL, *sub[4];
    size_t cap = 0;
    field *topics = calloc((size_t)n_topics + 1, sizeof *topics);
    field *to = calloc((size_t)(n_to > 0 ? n_to : 0) + 1, sizeof *to);
    for (long i = 0; i < n_topics; i++) {
        next_line(&buf, &cap, sub, 4, "topic");
        topics[i] = parse_field(sub[1]);
    }
    for (long i = 0; i < n_to; i++) {
        next_line(&buf, &cap, sub, 4, "to");
        to[i] = parse_field(sub[1]);
    }
    free(buf);

    oc2_message *m = NULL;
    if (p == NULL) goto done;
    const oc2_strings *got_topics = NULL;
    size_t len = 0;
    oc2_str s;
    if (oc2_publish_topics(p, &got_topics) != OC2_RESULT_OK || oc2_strings_len(got_topics, &len) != OC2_RESULT_OK) {
        FAIL("%s: no topics", at);
    } else if ((long)len != n_topics) {
        FAIL("%s: %zu topics, expected %ld", at, len, n_topics);
    } else {
        for (size_t i = 0; i < len; i++) {
            oc2_strings_get(got_topics, i, &s);
            if (!str_eq(s, &topics[i])) FAIL("%s: topics[%zu] '%s', expected '%s'", at, i, s.data, topics[i].data);
        }
    }
    oc2_bytes payload;
    const oc2_properties *props = NULL;
    if (oc2_publish_payload(p, &payload) != OC2_RESULT_OK || oc2_publish_properties(p, &props) != OC2_RESULT_OK) {
        FAIL("%s: no payload or properties", at);
        goto done;
    }
    oc2_result rc = oc2_codec_decode(codec, payload.data, payload.len, props, &m);
    if (rc != OC2_RESULT_OK) {
        char why[512];
        size_t w;
        oc2_codec_last_error(codec, why, sizeof why, &w);
        FAIL("%s: our own payload does not decode (rc %u): %s", at, rc, why);
        goto done;
    }
    if (strcmp(dialect, "*") != 0) {
        oc2_dialect d = 0;
        oc2_message_dialect(m, &d);
        if (strcmp(dialect_name(d), dialect) != 0) FAIL("%s: dialect %s, expected %s", at, dialect_name(d), dialect);
    }
    if (!msg_type.unchecked) {
        size_t n = 0;
        int found = 0;
        oc2_properties_user_count(props, &n);
        for (size_t i = 0; i < n; i++) {
            oc2_str k, v;
            oc2_properties_user_get(props, i, &k, &v);
            if (k.len == 7 && memcmp(k.data, "msgType", 7) == 0) {
                found = 1;
                if (!str_eq(v, &msg_type)) FAIL("%s: msgType '%s', expected '%s'", at, v.data, msg_type.data);
            }
        }
        if (!found) FAIL("%s: no msgType property, expected '%s'", at, msg_type.data);
    }
    s.data = NULL;
    s.len = 0;
    rc = oc2_message_request_id(m, &s);
    check_header(rc, s, &request_id, at, "request_id");
    rc = oc2_message_from(m, &s);
    check_header(rc, s, &from, at, "from");
    const oc2_strings *got_to = NULL;
    rc = oc2_message_to(m, &got_to);
    if (n_to < 0) {
        if (rc != OC2_RESULT_ABSENT) FAIL("%s: headers.to present, expected none", at);
    } else if (rc != OC2_RESULT_OK) {
        FAIL("%s: headers.to absent, expected %ld ids", at, n_to);
    } else {
        oc2_strings_len(got_to, &len);
        if ((long)len != n_to) {
            FAIL("%s: headers.to has %zu ids, expected %ld", at, len, n_to);
        } else {
            for (size_t i = 0; i < len; i++) {
                oc2_strings_get(got_to, i, &s);
                if (!str_eq(s, &to[i])) FAIL("%s: headers.to[%zu] '%s', expected '%s'", at, i, s.data, to[i].data);
            }
        }
    }
    oc2_msg_type t = 0;
    oc2_message_msg_type(m, &t);
    if (t != OC2_MSG_TYPE_RESPONSE) {
        FAIL("%s: not a response", at);
        goto done;
    }
    uint16_t got_status = 0;
    oc2_message_status(m, &got_status);
    oc2_str status_text = {"", 0};
    oc2_message_status_text(m, &status_text);
    if (got_status != status) FAIL("%s: status %u, expected %u ('%s')", at, got_status, status, status_text.data);
    if (!text.unchecked && !strstr(status_text.data, text.data))
        FAIL("%s: status_text '%s' does not contain '%s'", at, status_text.data, text.data);
    if (!results.unchecked) {
        /* The response object's canonical JSON has sorted keys: results come first. */
        oc2_str content;
        oc2_message_content_json(m, &content);
        const char *key = "{\"results\":";
        int has = strncmp(content.data, key, strlen(key)) == 0;
        if (results.absent) {
            if (has) FAIL("%s: results present, expected none: %s", at, content.data);
        } else {
            const char *rest = content.data + strlen(key);
            if (!has || strncmp(rest, results.data, results.len) != 0 ||
                (rest[results.len] != ',' && rest[results.len] != '}'))
                FAIL("%s: results differ\n  got:  %s\n  want: %s", at, content.data, results.data);
        }
    }
done:
    oc2_message_free(m);
    for (long i = 0; i < n_topics; i++) free(topics[i].data);
    for (long i = 0; i < n_to; i++) free(to[i].data);
    free(topics);
    free(to);
    free(msg_type.data);
    free(request_id.data);
    free(from.data);
    free(text.data);
    free(results.data);
}

/* Reads `n` rsp blocks and checks them against what was published. */
static void check_published(const oc2_publish *const *got, size_t n_got, long n, const char *at) {
    char *buf = NULL, *tok[12];
    size_t cap = 0;
    if ((long)n_got != n) FAIL("%s: %zu responses published, expected %ld", at, n_got, n);
    for (long i = 0; i < n; i++) {
        next_line(&buf, &cap, tok, 12, "rsp");
        char where[96];
        snprintf(where, sizeof where, "%s publish[%ld]", at, i);
        check_response((long)n_got == n ? got[i] : NULL, tok, where);
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MANIFEST\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 2;
    }
    if (oc2_codec_new(&codec) != OC2_RESULT_OK) return 2;

    char *line = NULL, *tok[16];
    size_t cap = 0;
    long expected = -1, cases = 0, steps = 0, step = 0;
    long long at_ms = 0, now_ms = 0;
    oc2_consumer_options *options = NULL;
    oc2_consumer_rules *rules = NULL;
    oc2_properties *props = NULL;
    oc2_decision *decision = NULL;
    /* The step read but not yet run (it runs at its `expect` line). */
    int retained = 0;
    field topic = {0}, payload = {0};
    char at[64] = "";

    while (getline(&line, &cap, in) > 0) {
        int n = split(line, tok, 16);
        if (n == 0) continue;
        if (strcmp(tok[0], "count") == 0) {
            expected = atol(tok[1]);
        } else if (strcmp(tok[0], "case") == 0) {
            snprintf(current, sizeof current, "%s", tok[1]);
            cases++;
            step = 0;
        } else if (strcmp(tok[0], "consumer") == 0) {
            field id = parse_field(tok[1]);
            if (oc2_consumer_options_new(id.data, &options) != OC2_RESULT_OK) FAIL("options refused");
            free(id.data);
            if (strcmp(tok[2], "-") != 0) oc2_consumer_options_set_freshness(options, strtoull(tok[2], NULL, 10));
            oc2_consumer_options_set_handle_features(options, atoi(tok[3]) != 0);
            if (strcmp(tok[4], "-") != 0) oc2_consumer_options_set_rate_limit(options, strtod(tok[4], NULL));
        } else if (strcmp(tok[0], "profile") == 0 || strcmp(tok[0], "arg") == 0) {
            field v = parse_field(tok[1]);
            if (tok[0][0] == 'p') oc2_consumer_options_add_profile(options, v.data);
            else oc2_consumer_options_add_arg(options, v.data);
            free(v.data);
        } else if (strcmp(tok[0], "pair") == 0) {
            field a = parse_field(tok[1]), t = parse_field(tok[2]);
            oc2_consumer_options_add_pair(options, a.data, t.data);
            free(a.data);
            free(t.data);
        } else if (strcmp(tok[0], "topics") == 0) {
            const char *peers[] = {"spec", "otupy", "yuuki", "oif"};
            const char *places[] = {"-", "shared", "producer", "both"};
            oc2_peer peer = OC2_PEER_SPEC;
            oc2_response_topics places_code = OC2_RESPONSE_TOPICS_PEER;
            for (unsigned i = 0; i < 4; i++) {
                if (strcmp(tok[1], peers[i]) == 0) peer = (oc2_peer)i;
                if (strcmp(tok[2], places[i]) == 0) places_code = (oc2_response_topics)i;
            }
            oc2_result rc = oc2_consumer_rules_new(options, peer, places_code, &rules);
            if (rc != OC2_RESULT_OK) {
                char why[512];
                size_t w;
                oc2_consumer_options_check(options, why, sizeof why, &w);
                FAIL("rules refused the options (rc %u): %s", rc, why);
            }
        } else if (strcmp(tok[0], "step") == 0) {
            at_ms = strtoll(tok[1], NULL, 10);
            now_ms = strtoll(tok[2], NULL, 10);
            topic = parse_field(tok[3]);
            retained = atoi(tok[4]);
            payload = parse_field(tok[5]);
            snprintf(at, sizeof at, "step %ld", step++);
            steps++;
        } else if (strcmp(tok[0], "props") == 0 && strcmp(tok[1], "none") != 0) {
            oc2_properties_new(&props);
            if (strcmp(tok[1], "-") != 0) oc2_properties_set_payload_format(props, (uint8_t)atoi(tok[1]));
            if (strcmp(tok[2], "-") != 0) {
                field ct = parse_field(tok[2]);
                oc2_properties_set_content_type(props, ct.data);
                free(ct.data);
            }
        } else if (strcmp(tok[0], "user") == 0) {
            field k = parse_field(tok[1]), v = parse_field(tok[2]);
            oc2_properties_add_user(props, k.data, v.data);
            free(k.data);
            free(v.data);
        } else if (strcmp(tok[0], "expect") == 0) {
            field skipped = parse_field(tok[1]), command_id = parse_field(tok[3]);
            int execute = atoi(tok[2]);
            long n_publish = atol(tok[4]);
            oc2_decision_free(decision);
            decision = NULL;
            if (rules == NULL || oc2_consumer_rules_on_command(rules, topic.data, (const uint8_t *)payload.data, payload.len,
                                                               props, retained != 0, now_ms, (uint64_t)at_ms,
                                                               &decision) != OC2_RESULT_OK) {
                FAIL("%s: on_command failed", at);
                exit(1);
            }
            oc2_str s = {"", 0}, reason = {"", 0};
            oc2_result rc = oc2_decision_skipped(decision, &s);
            oc2_decision_reason(decision, &reason);
            if (skipped.absent ? rc != OC2_RESULT_ABSENT : (rc != OC2_RESULT_OK || !str_eq(s, &skipped)))
                FAIL("%s: skipped '%s', expected '%s' (%s)", at, rc == OC2_RESULT_OK ? s.data : "(none)",
                     skipped.absent ? "(none)" : skipped.data, reason.data);
            size_t n_got = 0;
            oc2_decision_publish_count(decision, &n_got);
            const oc2_publish **got = calloc(n_got + 1, sizeof *got);
            for (size_t i = 0; i < n_got; i++) oc2_decision_publish(decision, i, &got[i]);
            check_published(got, n_got, n_publish, at);
            free(got);
            const oc2_request *request = NULL;
            rc = oc2_decision_request(decision, &request);
            if (execute && rc != OC2_RESULT_OK) FAIL("%s: not executed, expected it", at);
            if (!execute && rc == OC2_RESULT_OK) FAIL("%s: executed, expected not", at);
            if (execute && rc == OC2_RESULT_OK && !command_id.unchecked) {
                const oc2_message *m = NULL;
                oc2_request_message(request, &m);
                oc2_str content;
                oc2_message_content_json(m, &content);
                /* The command object in canonical JSON: "command_id":"<id>" when present. */
                char want[256];
                snprintf(want, sizeof want, "\"command_id\":\"%s\"", command_id.absent ? "" : command_id.data);
                int has = strstr(content.data, "\"command_id\":") != NULL;
                if (command_id.absent ? has : strstr(content.data, want) == NULL)
                    FAIL("%s: command_id in %s, expected %s", at, content.data,
                         command_id.absent ? "none" : command_id.data);
            }
            free(skipped.data);
            free(command_id.data);
            free(topic.data);
            free(payload.data);
            topic.data = payload.data = NULL;
            oc2_properties_free(props);
            props = NULL;
        } else if (strcmp(tok[0], "answer") == 0) {
            field response = parse_field(tok[1]);
            long n_publish = atol(tok[2]);
            const oc2_request *request = NULL;
            oc2_publish *out = NULL;
            char where[96];
            snprintf(where, sizeof where, "%s answer", at);
            if (decision == NULL || oc2_decision_request(decision, &request) != OC2_RESULT_OK) {
                FAIL("%s: no request to answer", where);
                check_published(NULL, 0, n_publish, where);
            } else {
                oc2_result rc = oc2_consumer_rules_answer(rules, request, response.data, response.len, &out);
                if (rc != OC2_RESULT_OK && rc != OC2_RESULT_ABSENT) {
                    char why[512];
                    size_t w;
                    oc2_consumer_rules_last_error(rules, why, sizeof why, &w);
                    FAIL("%s: answer failed (rc %u): %s", where, rc, why);
                }
                if (rc == OC2_RESULT_ABSENT && out != NULL) FAIL("%s: output written on ABSENT", where);
                const oc2_publish *got[1] = {out};
                check_published(got, out ? 1 : 0, n_publish, where);
                oc2_publish_free(out);
            }
            free(response.data);
        } else if (strcmp(tok[0], "end") == 0) {
            oc2_decision_free(decision);
            decision = NULL;
            oc2_consumer_rules_free(rules);
            rules = NULL;
            oc2_consumer_options_free(options);
            options = NULL;
        }
    }
    free(line);
    fclose(in);
    oc2_codec_free(codec);
    if (expected < 0 || cases != expected) {
        fprintf(stderr, "FAIL: manifest announced %ld cases, ran %ld\n", expected, cases);
        failures++;
    }
    printf("rules: %ld cases, %ld steps, %d failures\n", cases, steps, failures);
    return failures ? 1 : 0;
}
