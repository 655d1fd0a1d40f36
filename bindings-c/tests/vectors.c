/* Runs every shared vector (tests/vectors) through the C API and checks
 * the same results as the Rust runner: decoded message (canonical JSON),
 * encoding, dialect, message type; or error kind, path, reason, salvage.
 * Success cases also round-trip: from_json, then encode in every encoding x
 * dialect and decode again with and without the publish properties (through
 * otupy, top-level keys such as `signature` come back as headers).
 *
 * Input: the manifest written by vectors_manifest.py (see there). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oc2mqtt.h"

static int failures;
static const char *current;

#define FAIL(...)                                          \
    do {                                                   \
        fprintf(stderr, "FAIL %s: ", current);             \
        fprintf(stderr, __VA_ARGS__);                      \
        fputc('\n', stderr);                               \
        failures++;                                        \
    } while (0)

/* A decoded `x<hex>` token; `absent` for `-`, `unchecked` for `*`. */
typedef struct {
    unsigned char *data;
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
    for (size_t i = 0; i < n; i++) f.data[i] = (unsigned char)(hex_digit(tok[1 + 2 * i]) << 4 | hex_digit(tok[2 + 2 * i]));
    f.data[n] = 0;
    f.len = n;
    return f;
}

static int str_eq(oc2_str s, const field *f) {
    return s.len == f->len && memcmp(s.data, f->data, s.len) == 0 && s.data[s.len] == 0;
}

static const char *encoding_name(oc2_encoding e) {
    return e == OC2_ENCODING_JSON ? "json" : e == OC2_ENCODING_CBOR ? "cbor" : "?";
}
static const char *dialect_name(oc2_dialect d) {
    return d == OC2_DIALECT_SPEC ? "spec" : d == OC2_DIALECT_OTUPY ? "otupy" : d == OC2_DIALECT_BARE ? "bare" : "?";
}
static const char *msg_type_name(oc2_msg_type t) {
    return t == OC2_MSG_TYPE_REQUEST ? "request"
         : t == OC2_MSG_TYPE_RESPONSE ? "response"
         : t == OC2_MSG_TYPE_NOTIFICATION ? "notification" : "?";
}
static const char *kind_name(oc2_result r) {
    switch (r) {
    case OC2_RESULT_MESSAGE_TOO_LARGE: return "too_large";
    case OC2_RESULT_MESSAGE_SYNTAX: return "syntax";
    case OC2_RESULT_MESSAGE_UTF8: return "utf8";
    case OC2_RESULT_MESSAGE_CONTENT_TYPE: return "content_type";
    case OC2_RESULT_MESSAGE_DIALECT: return "dialect";
    case OC2_RESULT_MESSAGE_TYPE: return "type";
    case OC2_RESULT_MESSAGE_MISSING: return "missing";
    case OC2_RESULT_MESSAGE_VALUE: return "value";
    default: return "(not a message error)";
    }
}

/* Checks an optional salvage string against its expectation. */
static void check_salvage_str(oc2_result rc, oc2_str got, const field *want, const char *what) {
    if (want->unchecked) return;
    if (want->absent) {
        if (rc != OC2_RESULT_ABSENT) FAIL("salvage %s: expected none, got rc %u", what, rc);
    } else if (rc != OC2_RESULT_OK || !str_eq(got, want)) {
        FAIL("salvage %s: expected '%s', got rc %u", what, (char *)want->data, rc);
    }
}

static void check_salvage_enum(oc2_result rc, const char *got, const field *want, const char *what) {
    if (want->unchecked) return;
    if (want->absent) {
        if (rc != OC2_RESULT_ABSENT) FAIL("salvage %s: expected none, got %s", what, got);
    } else if (rc != OC2_RESULT_OK || strcmp(got, (char *)want->data) != 0) {
        FAIL("salvage %s: expected %s, got %s (rc %u)", what, (char *)want->data, got, rc);
    }
}

static void check_error(oc2_codec *codec, oc2_result rc, char **tok) {
    const char *kind = tok[1];
    if (strcmp(kind_name(rc), kind) != 0) {
        FAIL("expected error %s, got rc %u (%s)", kind, rc, kind_name(rc));
        return;
    }
    field path = parse_field(tok[2]), reason = parse_field(tok[3]);
    oc2_str s;
    if (!path.unchecked) {
        if (oc2_codec_last_error_path(codec, &s) != OC2_RESULT_OK || !str_eq(s, &path))
            FAIL("expected path '%s'", (char *)path.data);
    }
    char text[4096];
    size_t n;
    if (oc2_codec_last_error(codec, text, sizeof text, &n) != OC2_RESULT_OK || n == 0 || strlen(text) != n)
        FAIL("no last error text");
    else if (!reason.unchecked && !strstr(text, (char *)reason.data))
        FAIL("reason '%s' does not contain '%s'", text, (char *)reason.data);

    field want[5];
    for (int i = 0; i < 5; i++) want[i] = parse_field(tok[4 + i]);
    s.data = NULL;
    s.len = 0;
    oc2_result r = oc2_codec_salvage_request_id(codec, &s);
    check_salvage_str(r, s, &want[0], "request_id");
    r = oc2_codec_salvage_from(codec, &s);
    check_salvage_str(r, s, &want[1], "from");
    oc2_dialect d = 0;
    r = oc2_codec_salvage_dialect(codec, &d);
    check_salvage_enum(r, dialect_name(d), &want[2], "dialect");
    oc2_encoding e = 0;
    r = oc2_codec_salvage_encoding(codec, &e);
    check_salvage_enum(r, encoding_name(e), &want[3], "encoding");
    oc2_msg_type t = 0;
    r = oc2_codec_salvage_msg_type(codec, &t);
    check_salvage_enum(r, msg_type_name(t), &want[4], "msg_type");
    for (int i = 0; i < 5; i++) free(want[i].data);
    free(path.data);
    free(reason.data);
}

/* Decodes, then checks the message is the expected canonical JSON. */
static void expect_json(const oc2_message *m, const field *json, const char *how) {
    oc2_str s;
    if (oc2_message_json(m, &s) != OC2_RESULT_OK) {
        FAIL("%s: no JSON", how);
    } else if (!str_eq(s, json)) {
        FAIL("%s: message differs\n  got:  %s\n  want: %s", how, s.data, (char *)json->data);
    }
}

static void round_trip(oc2_codec *codec, const field *json, const field *via_otupy, int bare_ok) {
    oc2_message *m = NULL;
    if (oc2_codec_message_from_json(codec, (const char *)json->data, json->len, &m) != OC2_RESULT_OK) {
        FAIL("from_json refused the canonical form");
        return;
    }
    expect_json(m, json, "from_json");
    const oc2_encoding encs[] = {OC2_ENCODING_JSON, OC2_ENCODING_CBOR};
    const oc2_dialect dias[] = {OC2_DIALECT_SPEC, OC2_DIALECT_OTUPY, OC2_DIALECT_BARE};
    for (int e = 0; e < 2; e++) {
        for (int d = 0; d < (bare_ok ? 3 : 2); d++) {
            oc2_payload *p = NULL;
            if (oc2_codec_encode(codec, m, encs[e], dias[d], &p) != OC2_RESULT_OK) {
                FAIL("encode %s %s failed", encoding_name(encs[e]), dialect_name(dias[d]));
                continue;
            }
            oc2_bytes b;
            const oc2_properties *props;
            oc2_payload_bytes(p, &b);
            oc2_payload_properties(p, &props);
            for (int with_props = 0; with_props < 2; with_props++) {
                oc2_message *back = NULL;
                oc2_result rc = oc2_codec_decode(codec, b.data, b.len, with_props ? props : NULL, &back);
                char how[64];
                snprintf(how, sizeof how, "%s %s %s", encoding_name(encs[e]), dialect_name(dias[d]),
                         with_props ? "with properties" : "sniffed");
                if (rc != OC2_RESULT_OK) {
                    FAIL("%s: decode failed rc %u", how, rc);
                    continue;
                }
                expect_json(back, dias[d] == OC2_DIALECT_OTUPY ? via_otupy : json, how);
                oc2_encoding ge;
                oc2_dialect gd;
                oc2_message_encoding(back, &ge);
                oc2_message_dialect(back, &gd);
                if (ge != encs[e] || gd != dias[d]) FAIL("%s: came back as %s %s", how, encoding_name(ge), dialect_name(gd));
                oc2_message_free(back);
            }
            oc2_payload_free(p);
        }
    }
    oc2_message_free(m);
}

static void check_ok(const oc2_message *m, char **tok, oc2_codec *codec) {
    oc2_encoding e;
    oc2_dialect d;
    oc2_msg_type t;
    oc2_message_encoding(m, &e);
    oc2_message_dialect(m, &d);
    oc2_message_msg_type(m, &t);
    if (strcmp(encoding_name(e), tok[1]) != 0) FAIL("encoding %s, expected %s", encoding_name(e), tok[1]);
    if (strcmp(dialect_name(d), tok[2]) != 0) FAIL("dialect %s, expected %s", dialect_name(d), tok[2]);
    if (strcmp(msg_type_name(t), tok[3]) != 0) FAIL("msg_type %s, expected %s", msg_type_name(t), tok[3]);
    field json = parse_field(tok[5]), via_otupy = parse_field(tok[6]);
    expect_json(m, &json, "decode");
    round_trip(codec, &json, &via_otupy, atoi(tok[4]));
    free(json.data);
    free(via_otupy.data);
}

static int split(char *line, char **tok, int max) {
    int n = 0;
    for (char *t = strtok(line, " \n"); t && n < max; t = strtok(NULL, " \n")) tok[n++] = t;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MANIFEST\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 2;
    }
    oc2_codec *codec = NULL;
    if (oc2_codec_new(&codec) != OC2_RESULT_OK) return 2;

    char *line = NULL, *tok[16], name[512] = "";
    size_t cap = 0;
    long expected = -1, cases = 0, ok_cases = 0, err_cases = 0;
    field payload = {0};
    oc2_properties *props = NULL;
    while (getline(&line, &cap, in) > 0) {
        int n = split(line, tok, 16);
        if (n == 0) continue;
        if (strcmp(tok[0], "count") == 0) {
            expected = atol(tok[1]);
        } else if (strcmp(tok[0], "case") == 0) {
            snprintf(name, sizeof name, "%s", tok[1]);
            current = name;
            cases++;
        } else if (strcmp(tok[0], "payload") == 0) {
            payload = parse_field(tok[1]);
        } else if (strcmp(tok[0], "props") == 0 && strcmp(tok[1], "none") != 0) {
            oc2_properties_new(&props);
            if (strcmp(tok[1], "-") != 0) oc2_properties_set_payload_format(props, (uint8_t)atoi(tok[1]));
            if (strcmp(tok[2], "-") != 0) {
                field ct = parse_field(tok[2]);
                oc2_properties_set_content_type(props, (char *)ct.data);
                free(ct.data);
            }
        } else if (strcmp(tok[0], "user") == 0) {
            field k = parse_field(tok[1]), v = parse_field(tok[2]);
            oc2_properties_add_user(props, (char *)k.data, (char *)v.data);
            free(k.data);
            free(v.data);
        } else if (strcmp(tok[0], "ok") == 0 || strcmp(tok[0], "err") == 0) {
            oc2_message *m = NULL;
            oc2_result rc = oc2_codec_decode(codec, payload.data, payload.len, props, &m);
            if (tok[0][0] == 'o') {
                ok_cases++;
                if (rc != OC2_RESULT_OK) {
                    char text[1024];
                    size_t w;
                    oc2_codec_last_error(codec, text, sizeof text, &w);
                    FAIL("decode failed: rc %u: %s", rc, text);
                } else {
                    check_ok(m, tok, codec);
                }
            } else {
                err_cases++;
                if (rc == OC2_RESULT_OK) FAIL("decoded, but an error was expected");
                else if (m != NULL) FAIL("output written on failure");
                else check_error(codec, rc, tok);
            }
            oc2_message_free(m);
        } else if (strcmp(tok[0], "end") == 0) {
            free(payload.data);
            payload.data = NULL;
            oc2_properties_free(props);
            props = NULL;
        }
    }
    free(line);
    fclose(in);
    oc2_codec_free(codec);
    if (expected < 0 || cases != expected || ok_cases + err_cases != cases) {
        fprintf(stderr, "FAIL: manifest announced %ld cases, ran %ld (%ld ok, %ld err)\n", expected, cases, ok_cases,
                err_cases);
        failures++;
    }
    printf("vectors: %ld cases (%ld decode, %ld errors), %d failures\n", cases, ok_cases, err_cases, failures);
    return failures ? 1 : 0;
}
