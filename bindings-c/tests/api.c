/* The sans-IO C API: accessors, building and encoding, topics, dedup,
 * correlator, and misuse (NULL everywhere, small buffers, invalid UTF-8,
 * huge payloads). Run plain, under ASan+UBSan and under valgrind. */
#include <stdint.h>
#include <stdlib.h>

#include "testing.h"

#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1

static const char QUERY[] =
    "{\"headers\":{\"request_id\":\"rid-1\",\"created\":1700000000000,\"from\":\"producer-1\",\"to\":[\"fw-1\",\"fw-2\"]},"
    "\"body\":{\"openc2\":{\"request\":{\"action\":\"query\",\"target\":{\"features\":[\"versions\",\"profiles\"]}}}}}";
static const char TWO_TARGETS[] =
    "{\"headers\":{\"request_id\":\"bad-1\",\"from\":\"p9\"},\"body\":{\"openc2\":{\"request\":"
    "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\",\"ipv6_net\":\"::/0\"}}}}}";
static const char DENY_SLPF[] =
    "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},\"actuator\":{\"slpf\":{}},\"args\":{\"duration\":500}}";

static oc2_message *decode(oc2_codec *codec, const char *text) {
    oc2_message *m = NULL;
    CHECK_RC(oc2_codec_decode(codec, (const uint8_t *)text, strlen(text), NULL, &m), OC2_RESULT_OK);
    return m;
}

static void last_error_is(oc2_codec *codec, const char *want) {
    char buf[512];
    size_t n = 0;
    CHECK_RC(oc2_codec_last_error(codec, buf, sizeof buf, &n), OC2_RESULT_OK);
    CHECK(n == strlen(want) && strcmp(buf, want) == 0);
    if (strcmp(buf, want) != 0) fprintf(stderr, "  last error: '%s'\n  expected:   '%s'\n", buf, want);
}

static void result_text_names_every_code(void) {
    const oc2_result codes[] = {
        OC2_RESULT_OK, OC2_RESULT_NULL_PARAMETER, OC2_RESULT_INSUFFICIENT_SIZE, OC2_RESULT_PANIC,
        OC2_RESULT_INVALID_UTF8, OC2_RESULT_INVALID_ARGUMENT, OC2_RESULT_ABSENT, OC2_RESULT_OUT_OF_RANGE, OC2_RESULT_DONE,
        OC2_RESULT_MESSAGE_TOO_LARGE, OC2_RESULT_MESSAGE_SYNTAX, OC2_RESULT_MESSAGE_UTF8,
        OC2_RESULT_MESSAGE_CONTENT_TYPE, OC2_RESULT_MESSAGE_DIALECT, OC2_RESULT_MESSAGE_TYPE,
        OC2_RESULT_MESSAGE_MISSING, OC2_RESULT_MESSAGE_VALUE, OC2_RESULT_MESSAGE_OTHER, OC2_RESULT_TOPIC,
        OC2_RESULT_CONFIG, OC2_RESULT_CONNECT, OC2_RESULT_AUTH, OC2_RESULT_TLS, OC2_RESULT_TIMEOUT,
        OC2_RESULT_PUBLISH, OC2_RESULT_CLOSED, OC2_RESULT_HANDLER, OC2_RESULT_IO, OC2_RESULT_ERROR_OTHER,
    };
    char buf[128];
    size_t n;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK_RC(oc2_result_text(codes[i], buf, sizeof buf, &n), OC2_RESULT_OK);
        CHECK(n > 0 && n == strlen(buf) && strcmp(buf, "unknown result code") != 0);
    }
    CHECK_RC(oc2_result_text(OC2_RESULT_MESSAGE_VALUE, buf, sizeof buf, &n), OC2_RESULT_OK);
    CHECK(strcmp(buf, "message: a field has an invalid value") == 0);
    CHECK_RC(oc2_result_text(12345, buf, sizeof buf, &n), OC2_RESULT_OK);
    CHECK(strcmp(buf, "unknown result code") == 0);
    /* Stable numbers: these are part of the ABI. */
    CHECK(OC2_RESULT_OK == 0 && OC2_RESULT_NULL_PARAMETER == 1 && OC2_RESULT_MESSAGE_TOO_LARGE == 100 &&
          OC2_RESULT_TOPIC == 200 && OC2_RESULT_TIMEOUT == 205);
}

static void small_buffers_give_the_needed_size(void) {
    const char *text = "a required argument was NULL"; /* 28 bytes */
    char buf[64];
    size_t n = 999;
    CHECK_RC(oc2_result_text(OC2_RESULT_NULL_PARAMETER, NULL, 0, &n), OC2_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == strlen(text) + 1);
    memset(buf, 'z', sizeof buf);
    n = 0;
    CHECK_RC(oc2_result_text(OC2_RESULT_NULL_PARAMETER, buf, strlen(text), &n), OC2_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == strlen(text) + 1);
    CHECK(buf[0] == 'z'); /* nothing copied */
    CHECK_RC(oc2_result_text(OC2_RESULT_NULL_PARAMETER, buf, strlen(text) + 1, &n), OC2_RESULT_OK);
    CHECK(n == strlen(text) && strcmp(buf, text) == 0);
    CHECK_RC(oc2_result_text(OC2_RESULT_OK, buf, sizeof buf, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_result_text(OC2_RESULT_OK, NULL, 64, &n), OC2_RESULT_NULL_PARAMETER);

    /* The same rules for a handle's last error. */
    oc2_codec *codec = NULL;
    oc2_message *m = (oc2_message *)0x1; /* sentinel: must stay untouched on failure */
    CHECK_RC(oc2_codec_new(&codec), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_decode(codec, LIT(TWO_TARGETS), NULL, &m), OC2_RESULT_MESSAGE_VALUE);
    CHECK(m == (oc2_message *)0x1);
    const char *detail = "body.openc2.request.target: expected exactly one key, found 2";
    CHECK_RC(oc2_codec_last_error(codec, buf, 10, &n), OC2_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == strlen(detail) + 1);
    last_error_is(codec, detail);
    oc2_codec_free(codec);
}

static void version_is_static_text(void) {
    oc2_str v = oc2_version();
    CHECK(v.len >= 5 && v.data[v.len] == 0 && v.data[0] >= '0' && v.data[0] <= '9');
}

static void result_str_is_the_same_static_text(void) {
    char buf[128];
    size_t n;
    for (unsigned code = 0; code < 300; code++) {
        const char *s = oc2_result_str(code);
        CHECK(s != NULL);
        CHECK_RC(oc2_result_text(code, buf, sizeof buf, &n), OC2_RESULT_OK);
        CHECK(strcmp(s, buf) == 0);
    }
    CHECK(strcmp(oc2_result_str(OC2_RESULT_CONNECT), "cannot connect to the broker") == 0);
    CHECK(strcmp(oc2_result_str(4000000000u), "unknown result code") == 0);
    /* Static: the same pointer every time. */
    CHECK(oc2_result_str(OC2_RESULT_TIMEOUT) == oc2_result_str(OC2_RESULT_TIMEOUT));
}

/* The header's macros (compile time) against the library loaded (run time). */
#if !defined(OC2MQTT_VERSION_NUMBER) || OC2MQTT_VERSION_NUMBER < 1000
#error "oc2mqtt.h defines OC2MQTT_VERSION_NUMBER (major * 1000000 + minor * 1000 + patch)"
#endif
static void version_macros_match_the_library(void) {
    char text[32];
    snprintf(text, sizeof text, "%u.%u.%u", (unsigned)OC2MQTT_VERSION_MAJOR, (unsigned)OC2MQTT_VERSION_MINOR,
             (unsigned)OC2MQTT_VERSION_PATCH);
    CHECK_STR(oc2_version(), text);
    CHECK(oc2_version_number() == OC2MQTT_VERSION_NUMBER);
    CHECK(OC2MQTT_VERSION_NUMBER ==
          OC2MQTT_VERSION_MAJOR * 1000000 + OC2MQTT_VERSION_MINOR * 1000 + OC2MQTT_VERSION_PATCH);
}

static void on_log_ignored(void *userdata, const oc2_log_params *params) {
    (void)userdata;
    (void)params;
}

/* What needs no broker: argument checks of the log and connection
 * callbacks and of the builder's options (tests/events.c and roundtrip.c
 * use them on a broker). */
static void callbacks_and_options_check_their_arguments(void) {
    CHECK_RC(oc2_log_set_callback(on_log_ignored, 0, NULL), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_log_set_callback(on_log_ignored, OC2_LOG_TRACE + 1, NULL), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_log_set_callback(on_log_ignored, OC2_LOG_TRACE, NULL), OC2_RESULT_OK);
    CHECK_RC(oc2_log_set_callback(NULL, OC2_LOG_ERROR, NULL), OC2_RESULT_OK);
    CHECK(OC2_LOG_ERROR < OC2_LOG_WARN && OC2_LOG_WARN < OC2_LOG_INFO && OC2_LOG_INFO < OC2_LOG_DEBUG);
    CHECK_RC(oc2_producer_set_connection_callbacks(NULL, NULL, NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_set_connection_callbacks(NULL, NULL, NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_monitor_set_connection_callbacks(NULL, NULL, NULL, NULL), OC2_RESULT_NULL_PARAMETER);

    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    char text[256];
    size_t n;
    CHECK_RC(oc2_config_builder_new("mqtt://127.0.0.1:1883", &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_message_expiry(b, 30), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_message_expiry(b, 0), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_max_payload(b, 4096), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_peer(b, OC2_PEER_OTUPY), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_peer(b, 99), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_free(c);
    c = NULL;
    CHECK_RC(oc2_config_builder_set_max_payload(b, 0), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_builder_last_error(b, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strstr(text, "oc2_config_builder_set_max_payload") != NULL);
    if (!strstr(text, "oc2_config_builder_set_max_payload")) fprintf(stderr, "  last error: %s\n", text);
    CHECK(c == NULL);
    CHECK_RC(oc2_config_builder_set_message_expiry(NULL, 1), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_set_max_payload(NULL, 1), OC2_RESULT_NULL_PARAMETER);
    oc2_config_builder_free(b);

    oc2_consumer_options *o = NULL;
    CHECK_RC(oc2_consumer_options_new("fw-1", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_group(o, "g1"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_rate_limit(o, 120.0), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_handle_features(o, true), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_group(o, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set_group(NULL, "g"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set_rate_limit(NULL, 1.0), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set_rate_limit(o, -1.0), OC2_RESULT_INVALID_ARGUMENT);
    oc2_consumer_options_free(o);
}

/* A builder's setting as text, or "(absent)" / "(rc N)". */
static const char *config_get(const oc2_config_builder *b, const char *name) {
    static char text[256];
    size_t n;
    oc2_result rc = oc2_config_builder_get(b, name, text, sizeof text, &n);
    if (rc == OC2_RESULT_ABSENT) return "(absent)";
    if (rc != OC2_RESULT_OK) snprintf(text, sizeof text, "(rc %u)", (unsigned)rc);
    return text;
}

static const char *options_get(const oc2_consumer_options *o, const char *name) {
    static char text[256];
    size_t n;
    oc2_result rc = oc2_consumer_options_get(o, name, text, sizeof text, &n);
    if (rc == OC2_RESULT_ABSENT) return "(absent)";
    if (rc != OC2_RESULT_OK) snprintf(text, sizeof text, "(rc %u)", (unsigned)rc);
    return text;
}

#define CHECK_TEXT(got, want)                                                     \
    do {                                                                          \
        const char *g_ = (got);                                                   \
        test_checks++;                                                            \
        if (strcmp(g_, (want)) != 0) {                                            \
            fprintf(stderr, "%s:%d: %s is '%s', expected '%s'\n", __FILE__, __LINE__, #got, g_, (want)); \
            test_failures++;                                                      \
        }                                                                         \
    } while (0)

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *builder_error(const oc2_config_builder *b) {
    static char text[512];
    size_t n;
    if (oc2_config_builder_last_error(b, text, sizeof text, &n) != OC2_RESULT_OK) return "(no text)";
    return text;
}

static const char *options_error(const oc2_consumer_options *o) {
    static char text[512];
    size_t n;
    if (oc2_consumer_options_last_error(o, text, sizeof text, &n) != OC2_RESULT_OK) return "(no text)";
    return text;
}

/* oc2_config_builder_set takes every connection setting by its name, as
 * text of its kind, and the typed setters land in the same settings. */
static void config_settings_are_set_by_name_for_every_kind(void) {
    oc2_config_builder *b = NULL;
    CHECK_RC(oc2_config_builder_new("mqtt://127.0.0.1:1883", &b), OC2_RESULT_OK);
    /* Text, path, list, flag, whole number, choice. */
    CHECK_TEXT(config_get(b, "client_id"), "(absent)");
    CHECK_RC(oc2_config_builder_set(b, "client_id", "fw-7"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "client_id"), "fw-7");
    CHECK_RC(oc2_config_builder_set(b, "ca_file", "/etc/ssl/ca.pem"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "ca_file"), "/etc/ssl/ca.pem");
    CHECK_RC(oc2_config_builder_set(b, "brokers", "mqtt://a:1883, mqtt://b:1883"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "brokers"), "mqtt://a:1883,mqtt://b:1883");
    CHECK_RC(oc2_config_builder_add_broker(b, "mqtt://c:1883"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "brokers"), "mqtt://a:1883,mqtt://b:1883,mqtt://c:1883");
    CHECK_RC(oc2_config_builder_set(b, "insecure_skip_verify", "yes"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "insecure_skip_verify"), "true");
    CHECK_RC(oc2_config_builder_set(b, "keep_alive_secs", "45"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "keep_alive_secs"), "45");
    CHECK_RC(oc2_config_builder_set(b, "mqtt_version", "3.1.1"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "mqtt_version"), "3.1.1");
    CHECK_RC(oc2_config_builder_set(b, "peer", "otupy"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "peer"), "otupy");
    CHECK_RC(oc2_config_builder_set(b, "response_topics", "both"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "response_topics"), "both");
    /* A secret is set but never read back. */
    CHECK_RC(oc2_config_builder_set(b, "password", "s3cret"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "password"), "(absent)");

    /* The typed setters are the same settings; 0 / NULL / PEER put one back to its default. */
    CHECK_RC(oc2_config_builder_set_keep_alive(b, 30), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "keep_alive_secs"), "30");
    CHECK_RC(oc2_config_builder_set_mqtt_version(b, OC2_MQTT_V5), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "mqtt_version"), "5");
    CHECK_RC(oc2_config_builder_set_message_expiry(b, 60), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "message_expiry_secs"), "60");
    CHECK_RC(oc2_config_builder_set_message_expiry(b, 0), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "message_expiry_secs"), "(absent)");
    CHECK_RC(oc2_config_builder_set_tls(b, NULL, "/etc/ssl/me.pem", "/etc/ssl/me.key"), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "ca_file"), "(absent)");
    CHECK_TEXT(config_get(b, "key_file"), "/etc/ssl/me.key");
    CHECK_TEXT(config_get(b, "cert_file"), "/etc/ssl/me.pem");
    CHECK_RC(oc2_config_builder_set_response_topics(b, OC2_RESPONSE_TOPICS_PEER), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "response_topics"), "(absent)");
    CHECK_RC(oc2_config_builder_set_credentials(b, "ops", NULL), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "username"), "ops");
    CHECK_RC(oc2_config_builder_set_qos(b, 2), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "qos"), "2");

    /* What build checks between settings still holds for a value set by name. */
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_set_tls(b, NULL, NULL, NULL), OC2_RESULT_OK);
    CHECK_TEXT(config_get(b, "cert_file"), "(absent)");
    CHECK_RC(oc2_config_builder_set(b, "qos", "0"), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_CONFIG);
    CHECK(c == NULL);
    CHECK_RC(oc2_config_builder_set(b, "qos", "1"), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    if (c == NULL) fprintf(stderr, "  last error: %s\n", builder_error(b));
    oc2_config_free(c);
    oc2_config_builder_free(b);
}

/* An unknown name or a value that does not fit its kind is a configuration
 * error with core's text; nothing changes; NULL arguments are refused. */
static void config_settings_by_name_refuse_unknown_names_and_bad_values(void) {
    oc2_config_builder *b = NULL;
    char text[8];
    size_t n;
    CHECK_RC(oc2_config_builder_new("mqtt://127.0.0.1:1883", &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set(b, "keepalive", "30"), OC2_RESULT_CONFIG);
    CHECK(starts_with(builder_error(b),
                  "configuration: unknown setting 'keepalive' for ClientConfig; known: brokers, client_id, "
                  "client_id_file, username, password,"));
    CHECK(strstr(builder_error(b), "keep_alive_secs") != NULL);
    CHECK_RC(oc2_config_builder_set(b, "qos", "two"), OC2_RESULT_CONFIG);
    CHECK_TEXT(builder_error(b), "configuration: qos: expected a whole number from 0 to 255, found 'two'");
    CHECK_RC(oc2_config_builder_set(b, "qos", "256"), OC2_RESULT_CONFIG);
    CHECK_TEXT(builder_error(b), "configuration: qos: 256 is too large (at most 255)");
    CHECK_RC(oc2_config_builder_set(b, "insecure_skip_verify", "maybe"), OC2_RESULT_CONFIG);
    CHECK_TEXT(builder_error(b), "configuration: insecure_skip_verify: expected true or false, found 'maybe'");
    CHECK_RC(oc2_config_builder_set(b, "mqtt_version", "6"), OC2_RESULT_CONFIG);
    CHECK_TEXT(builder_error(b), "configuration: mqtt_version: unknown MQTT version '6'; expected 5, 3.1.1 or auto");
    CHECK_TEXT(config_get(b, "qos"), "1");
    CHECK_TEXT(config_get(b, "mqtt_version"), "auto");
    /* A success clears the last error. */
    CHECK_RC(oc2_config_builder_set(b, "qos", "2"), OC2_RESULT_OK);
    CHECK_TEXT(builder_error(b), "");

    CHECK_RC(oc2_config_builder_set(NULL, "qos", "1"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_set(b, NULL, "1"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_set(b, "qos", NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_set(b, "q\xffos", "1"), OC2_RESULT_INVALID_UTF8);
    CHECK_RC(oc2_config_builder_set(b, "client_id", "\xff"), OC2_RESULT_INVALID_UTF8);
    CHECK_RC(oc2_config_builder_get(NULL, "qos", text, sizeof text, &n), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_get(b, NULL, text, sizeof text, &n), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_get(b, "qos", text, sizeof text, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_config_builder_get(b, "keepalive", text, sizeof text, &n), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_builder_get(b, "brokers", text, sizeof text, &n), OC2_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == strlen("mqtt://127.0.0.1:1883") + 1);
    CHECK_TEXT(config_get(b, "qos"), "2");
    oc2_config_builder_free(b);
}

/* oc2_consumer_options_set: the same for a consumer's options (numbers,
 * seconds, lists of pairs), and the typed setters' refusals carry text. */
static void consumer_options_are_set_by_name(void) {
    oc2_consumer_options *o = NULL;
    uint64_t secs = 0;
    CHECK_RC(oc2_consumer_options_new("fw-1", &o), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "device_id"), "fw-1");
    CHECK_RC(oc2_consumer_options_set(o, "rate_limit", "2.5"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "rate_limit"), "2.5");
    CHECK_RC(oc2_consumer_options_set(o, "handler_timeout_secs", "0.25"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "handler_timeout_secs"), "0.25");
    CHECK_RC(oc2_consumer_options_set_handler_timeout(o, 500), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "handler_timeout_secs"), "0.5");
    CHECK_RC(oc2_consumer_options_set_handler_timeout(o, 0), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "handler_timeout_secs"), "(absent)");
    /* 0 is no limit by either path (core's rule, not an immediate 500). */
    CHECK_RC(oc2_consumer_options_set(o, "handler_timeout_secs", "1"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set(o, "handler_timeout_secs", "0"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "handler_timeout_secs"), "(absent)");
    CHECK_RC(oc2_consumer_options_set(o, "freshness_secs", "600"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_freshness(o, &secs), OC2_RESULT_OK);
    CHECK(secs == 600);
    CHECK_RC(oc2_consumer_options_set(o, "handle_features", "on"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "handle_features"), "true");
    CHECK_RC(oc2_consumer_options_set(o, "pairs", "deny:ipv4_net, query:features"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_add_pair(o, "allow", "ipv4_net"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "pairs"), "deny:ipv4_net,query:features,allow:ipv4_net");
    CHECK_RC(oc2_consumer_options_add_profile(o, "slpf"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "profiles"), "slpf");
    CHECK_RC(oc2_consumer_options_set(o, "journal", "/var/lib/fw/journal"), OC2_RESULT_OK);
    CHECK_TEXT(options_get(o, "journal"), "/var/lib/fw/journal");

    CHECK_RC(oc2_consumer_options_set(o, "device", "fw-2"), OC2_RESULT_CONFIG);
    CHECK(starts_with(options_error(o), "configuration: unknown setting 'device' for ConsumerOptions; known: device_id, profiles,"));
    CHECK_RC(oc2_consumer_options_set(o, "rate_limit", "0"), OC2_RESULT_CONFIG);
    CHECK_TEXT(options_error(o), "configuration: rate_limit: expected a finite number greater than 0, found 0");
    CHECK_RC(oc2_consumer_options_set(o, "pairs", "deny"), OC2_RESULT_CONFIG);
    CHECK_TEXT(options_error(o), "configuration: pairs: pair 'deny': expected ACTION:TARGET, e.g. deny:ipv4_connection");
    CHECK_TEXT(options_get(o, "pairs"), "deny:ipv4_net,query:features,allow:ipv4_net");
    CHECK_RC(oc2_consumer_options_set_rate_limit(o, -1.0), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_TEXT(options_error(o), "configuration: rate_limit: expected a finite number greater than 0, found -1");
    CHECK_TEXT(options_get(o, "rate_limit"), "2.5");
    CHECK_RC(oc2_consumer_options_set_rate_limit(o, 30.0), OC2_RESULT_OK);
    CHECK_TEXT(options_error(o), "");

    CHECK_RC(oc2_consumer_options_set(NULL, "group", "g"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set(o, NULL, "g"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set(o, "group", NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_get(o, "group", NULL, 0, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_TEXT(options_get(o, "group"), "(absent)");
    CHECK_TEXT(options_get(o, "device"), "(rc 201)");
    oc2_consumer_options_free(o);
}

static void null_arguments_are_refused(void) {
    oc2_codec *codec = NULL;
    oc2_str s = {NULL, 0};
    size_t n = 7;
    bool b = false;
    CHECK_RC(oc2_codec_new(NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_new(&codec), OC2_RESULT_OK);
    oc2_message *m = decode(codec, QUERY);
    oc2_message *out = NULL;

    CHECK_RC(oc2_codec_decode(NULL, LIT("{}"), NULL, &out), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_decode(codec, NULL, 5, NULL, &out), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_decode(codec, LIT(QUERY), NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_decode(codec, NULL, 0, NULL, &out), OC2_RESULT_MESSAGE_SYNTAX); /* empty payload */
    CHECK(out == NULL);
    CHECK_RC(oc2_codec_message_from_json(NULL, QUERY, strlen(QUERY), &out), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_message_from_json(codec, NULL, 3, &out), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_command_from_json(codec, DENY_SLPF, strlen(DENY_SLPF), NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_response_from_json(codec, NULL, "{}", 2, &out), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_encode(codec, NULL, OC2_ENCODING_JSON, OC2_DIALECT_SPEC, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_set_max_payload(NULL, 1), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_last_error(NULL, NULL, 0, &n), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_last_error_path(codec, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_codec_salvage_request_id(NULL, &s), OC2_RESULT_NULL_PARAMETER);
    CHECK(out == NULL && n == 7);

    CHECK_RC(oc2_message_request_id(NULL, &s), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_request_id(m, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_json(NULL, &s), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_to(m, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_status(NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_set_from(m, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_set_from(NULL, "x"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_message_set_to(m, NULL, 2), OC2_RESULT_NULL_PARAMETER);
    const char *with_null[] = {"a", NULL};
    CHECK_RC(oc2_message_set_to(m, with_null, 2), OC2_RESULT_NULL_PARAMETER);
    CHECK(s.data == NULL);

    CHECK_RC(oc2_properties_new(NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_properties_add_user(NULL, "a", "b"), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_payload_bytes(NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_strings_len(NULL, &n), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_strings_get(NULL, 0, &s), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_topics_new(NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_topics_subscriptions(NULL, OC2_ROLE_MONITOR, NULL, NULL, 0, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_topic_filter_matches(NULL, "oc2", &b), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_topic_filter_matches("oc2/#", "oc2", NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_dedup_new(1, 1, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_dedup_check(NULL, m, NULL, 0, 0, &b), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_dedup_get_stats(NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_correlator_new(NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_correlator_open(NULL, "r", 1, 0, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_correlator_on_response(NULL, m, NULL), OC2_RESULT_NULL_PARAMETER);

    /* Every _free accepts NULL. */
    oc2_codec_free(NULL);
    oc2_message_free(NULL);
    oc2_properties_free(NULL);
    oc2_payload_free(NULL);
    oc2_strings_free(NULL);
    oc2_topics_free(NULL);
    oc2_dedup_free(NULL);
    oc2_correlator_free(NULL);

    oc2_message_free(m);
    oc2_codec_free(codec);
}

static void decoded_message_exposes_its_fields(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *m = decode(codec, QUERY);
    oc2_str s;
    oc2_msg_type t;
    oc2_encoding e;
    oc2_dialect d;
    int64_t created = 0;
    uint16_t status = 0;
    size_t n = 0;
    CHECK_RC(oc2_message_msg_type(m, &t), OC2_RESULT_OK);
    CHECK(t == OC2_MSG_TYPE_REQUEST);
    CHECK_RC(oc2_message_encoding(m, &e), OC2_RESULT_OK);
    CHECK_RC(oc2_message_dialect(m, &d), OC2_RESULT_OK);
    CHECK(e == OC2_ENCODING_JSON && d == OC2_DIALECT_SPEC);
    CHECK_RC(oc2_message_request_id(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "rid-1");
    CHECK_RC(oc2_message_from(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "producer-1");
    CHECK_RC(oc2_message_created(m, &created), OC2_RESULT_OK);
    CHECK(created == 1700000000000LL);
    const oc2_strings *to = NULL;
    CHECK_RC(oc2_message_to(m, &to), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(to, &n), OC2_RESULT_OK);
    CHECK(n == 2);
    CHECK_RC(oc2_strings_get(to, 1, &s), OC2_RESULT_OK);
    CHECK_STR(s, "fw-2");
    CHECK_RC(oc2_strings_get(to, 2, &s), OC2_RESULT_OUT_OF_RANGE);
    CHECK_RC(oc2_message_action(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "query");
    CHECK_RC(oc2_message_target_name(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "features");
    CHECK_RC(oc2_message_target_json(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "[\"versions\",\"profiles\"]");
    CHECK_RC(oc2_message_content_json(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "{\"action\":\"query\",\"target\":{\"features\":[\"versions\",\"profiles\"]}}");
    CHECK_RC(oc2_message_profile(m, &s), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_status(m, &status), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_status_text(m, &s), OC2_RESULT_ABSENT);
    CHECK(status == 0);

    /* Bare response, no headers: header accessors say ABSENT. */
    oc2_message *r = decode(codec, "{\"status\":404,\"status_text\":\"no such rule\"}");
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 404);
    CHECK_RC(oc2_message_status_text(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "no such rule");
    CHECK_RC(oc2_message_dialect(r, &d), OC2_RESULT_OK);
    CHECK(d == OC2_DIALECT_BARE);
    CHECK_RC(oc2_message_request_id(r, &s), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_to(r, &to), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_created(r, &created), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_action(r, &s), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_message_json(r, &s), OC2_RESULT_OK);
    /* Headers are never emitted empty (issue 16). */
    CHECK_STR(s, "{\"body\":{\"openc2\":{\"response\":{\"status\":404,\"status_text\":\"no such rule\"}}}}");
    oc2_message_free(r);

    /* Setters: strings borrowed before a change are re-read after it. */
    CHECK_RC(oc2_message_set_from(m, "producer-2"), OC2_RESULT_OK);
    CHECK_RC(oc2_message_from(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "producer-2");
    const char *ids[] = {"d1"};
    CHECK_RC(oc2_message_set_to(m, ids, 1), OC2_RESULT_OK);
    CHECK_RC(oc2_message_to(m, &to), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(to, &n), OC2_RESULT_OK);
    CHECK(n == 1);
    CHECK_RC(oc2_message_set_to(m, NULL, 0), OC2_RESULT_OK);
    CHECK_RC(oc2_message_to(m, &to), OC2_RESULT_ABSENT);
    oc2_message_free(m);
    oc2_codec_free(codec);
}

static void decode_errors_say_what_and_where(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *m = NULL;
    oc2_str s;
    oc2_msg_type t = 0;
    CHECK_RC(oc2_codec_decode(codec, LIT(TWO_TARGETS), NULL, &m), OC2_RESULT_MESSAGE_VALUE);
    CHECK(m == NULL);
    last_error_is(codec, "body.openc2.request.target: expected exactly one key, found 2");
    CHECK_RC(oc2_codec_last_error_path(codec, &s), OC2_RESULT_OK);
    CHECK_STR(s, "body.openc2.request.target");
    CHECK_RC(oc2_codec_salvage_request_id(codec, &s), OC2_RESULT_OK);
    CHECK_STR(s, "bad-1");
    CHECK_RC(oc2_codec_salvage_from(codec, &s), OC2_RESULT_OK);
    CHECK_STR(s, "p9");
    CHECK_RC(oc2_codec_salvage_msg_type(codec, &t), OC2_RESULT_OK);
    CHECK(t == OC2_MSG_TYPE_REQUEST);

    /* Properties that announce something else. */
    oc2_properties *p = NULL;
    CHECK_RC(oc2_properties_new(&p), OC2_RESULT_OK);
    CHECK_RC(oc2_properties_set_content_type(p, "text/plain"), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_decode(codec, LIT(QUERY), p, &m), OC2_RESULT_MESSAGE_CONTENT_TYPE);
    last_error_is(codec, "unsupported content type 'text/plain'; expected application/openc2");
    oc2_properties_free(p);

    /* Not JSON at all, then a success that clears the detail. */
    CHECK_RC(oc2_codec_decode(codec, LIT("{\"action\": "), NULL, &m), OC2_RESULT_MESSAGE_SYNTAX);
    CHECK_RC(oc2_codec_last_error_path(codec, &s), OC2_RESULT_OK);
    CHECK_STR(s, "");
    CHECK_RC(oc2_codec_salvage_request_id(codec, &s), OC2_RESULT_ABSENT);
    m = decode(codec, QUERY);
    last_error_is(codec, "");
    CHECK_RC(oc2_codec_last_error_path(codec, &s), OC2_RESULT_ABSENT);
    oc2_message_free(m);
    oc2_codec_free(codec);
}

static void invalid_utf8_is_refused(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *m = NULL;
    CHECK_RC(oc2_codec_decode(codec, LIT("{\"action\":\"qu\xff\xfe\"}"), NULL, &m), OC2_RESULT_MESSAGE_UTF8);
    last_error_is(codec, "payload is not valid UTF-8 (at byte 13)");
    CHECK_RC(oc2_codec_message_from_json(codec, "{\"x\":\"\xc3\"}", 9, &m), OC2_RESULT_INVALID_UTF8);
    last_error_is(codec, "JSON text is not valid UTF-8 (at byte 6)");
    CHECK(m == NULL);
    m = decode(codec, QUERY);
    CHECK_RC(oc2_message_set_from(m, "bad\xff"), OC2_RESULT_INVALID_UTF8);
    const char *ids[] = {"ok", "\xe2\x82"};
    CHECK_RC(oc2_message_set_to(m, ids, 2), OC2_RESULT_INVALID_UTF8);
    oc2_str s;
    CHECK_RC(oc2_message_from(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "producer-1"); /* unchanged */
    oc2_properties *p = NULL;
    oc2_properties_new(&p);
    CHECK_RC(oc2_properties_add_user(p, "msgType", "\xff"), OC2_RESULT_INVALID_UTF8);
    size_t n = 9;
    CHECK_RC(oc2_properties_user_count(p, &n), OC2_RESULT_OK);
    CHECK(n == 0);
    oc2_topics *topics = NULL;
    oc2_topics_new(&topics);
    CHECK_RC(oc2_topics_validate_id(topics, "device id", "\xc0\xaf"), OC2_RESULT_INVALID_UTF8);
    oc2_topics_free(topics);
    oc2_properties_free(p);
    oc2_message_free(m);
    oc2_codec_free(codec);
}

static void a_payload_format_mqtt_does_not_define_is_refused_by_core(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_properties *p = NULL;
    oc2_properties_new(&p);
    CHECK_RC(oc2_properties_set_payload_format(p, 2), OC2_RESULT_OK); /* any byte is taken */
    oc2_message *m = NULL;
    CHECK_RC(oc2_codec_decode(codec, LIT("{\"status\":200}"), p, &m), OC2_RESULT_MESSAGE_CONTENT_TYPE);
    CHECK(m == NULL);
    last_error_is(codec, "properties.payload_format_indicator: expected 0 or 1, found 2");
    CHECK_RC(oc2_properties_set_payload_format(p, 1), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_decode(codec, LIT("{\"status\":200}"), p, &m), OC2_RESULT_OK);
    oc2_message_free(m);
    oc2_properties_free(p);
    oc2_codec_free(codec);
}

static void huge_payloads_are_refused_before_parsing(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *m = NULL;
    const size_t big = 8u << 20; /* 8 MiB command with a long extension value */
    char *payload = malloc(big);
    const char *head = "{\"action\":\"query\",\"target\":{\"features\":[]},\"x_note\":\"";
    size_t hl = strlen(head);
    memcpy(payload, head, hl);
    memset(payload + hl, 'x', big - hl - 2);
    memcpy(payload + big - 2, "\"}", 2);

    CHECK_RC(oc2_codec_decode(codec, (uint8_t *)payload, big, NULL, &m), OC2_RESULT_MESSAGE_TOO_LARGE);
    last_error_is(codec, "payload is 8388608 bytes, larger than the limit of 1048576 bytes");
    CHECK_RC(oc2_codec_decode(codec, (uint8_t *)payload, OC2_DEFAULT_MAX_PAYLOAD + 1, NULL, &m),
             OC2_RESULT_MESSAGE_TOO_LARGE);
    /* A length no buffer can have is refused without reading. */
    CHECK_RC(oc2_codec_decode(codec, (uint8_t *)payload, SIZE_MAX, NULL, &m), OC2_RESULT_INVALID_ARGUMENT);
    CHECK(m == NULL);

    CHECK_RC(oc2_codec_set_max_payload(codec, 16u << 20), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_decode(codec, (uint8_t *)payload, big, NULL, &m), OC2_RESULT_OK);
    oc2_str s;
    CHECK_RC(oc2_message_content_json(m, &s), OC2_RESULT_OK);
    CHECK(s.len > big - 100 && s.data[s.len] == 0);
    oc2_message_free(m);
    m = NULL;
    CHECK_RC(oc2_codec_set_max_payload(codec, 10), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_decode(codec, LIT(QUERY), NULL, &m), OC2_RESULT_MESSAGE_TOO_LARGE);

    /* Deep nesting is an error, not a stack overflow. */
    CHECK_RC(oc2_codec_set_max_payload(codec, OC2_DEFAULT_MAX_PAYLOAD), OC2_RESULT_OK);
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    size_t k = (size_t)sprintf(deep, "{\"action\":\"query\",\"target\":{\"x\":");
    memset(deep + k, '[', depth);
    memset(deep + k + depth, ']', depth);
    memcpy(deep + k + 2 * depth, "}}", 2);
    CHECK_RC(oc2_codec_decode(codec, (uint8_t *)deep, k + 2 * depth + 2, NULL, &m), OC2_RESULT_MESSAGE_SYNTAX);
    CHECK(m == NULL);
    free(deep);
    free(payload);
    oc2_codec_free(codec);
}

static void commands_are_built_encoded_and_answered(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *cmd = NULL;
    CHECK_RC(oc2_codec_command_from_json(codec, DENY_SLPF, strlen(DENY_SLPF), &cmd), OC2_RESULT_OK);
    oc2_str s;
    CHECK_RC(oc2_message_request_id(cmd, &s), OC2_RESULT_OK);
    CHECK(s.len == 36 && s.data[14] == '4'); /* a v4 UUID */
    CHECK_RC(oc2_message_profile(cmd, &s), OC2_RESULT_OK);
    CHECK_STR(s, "slpf");
    CHECK_RC(oc2_message_set_from(cmd, "producer-1"), OC2_RESULT_OK);

    oc2_payload *p = NULL;
    CHECK_RC(oc2_codec_encode(codec, cmd, OC2_ENCODING_JSON, 9, &p), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_codec_encode(codec, cmd, 0, OC2_DIALECT_SPEC, &p), OC2_RESULT_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_RC(oc2_codec_encode(codec, cmd, OC2_ENCODING_JSON, OC2_DIALECT_SPEC, &p), OC2_RESULT_OK);
    oc2_bytes b;
    CHECK_RC(oc2_payload_bytes(p, &b), OC2_RESULT_OK);
    CHECK(b.len > 20 && memcmp(b.data, "{\"headers\":{", 12) == 0);
    const oc2_properties *props = NULL;
    CHECK_RC(oc2_payload_properties(p, &props), OC2_RESULT_OK);
    uint8_t pfi = 9;
    size_t n = 0;
    oc2_str k, v;
    CHECK_RC(oc2_properties_payload_format(props, &pfi), OC2_RESULT_OK);
    CHECK(pfi == 1);
    CHECK_RC(oc2_properties_content_type(props, &s), OC2_RESULT_OK);
    CHECK_STR(s, "application/openc2");
    CHECK_RC(oc2_properties_user_count(props, &n), OC2_RESULT_OK);
    CHECK(n == 2);
    CHECK_RC(oc2_properties_user_get(props, 0, &k, &v), OC2_RESULT_OK);
    CHECK_STR(k, "msgType");
    CHECK_STR(v, "req");
    CHECK_RC(oc2_properties_user_get(props, 1, &k, &v), OC2_RESULT_OK);
    CHECK_STR(k, "encoding");
    CHECK_STR(v, "json");
    CHECK_RC(oc2_properties_user_get(props, 2, &k, &v), OC2_RESULT_OUT_OF_RANGE);

    /* What went out comes back the same, with and without properties. */
    oc2_message *back = NULL;
    oc2_str a, c;
    CHECK_RC(oc2_codec_decode(codec, b.data, b.len, props, &back), OC2_RESULT_OK);
    CHECK_RC(oc2_message_json(cmd, &a), OC2_RESULT_OK);
    CHECK_RC(oc2_message_json(back, &c), OC2_RESULT_OK);
    CHECK(a.len == c.len && memcmp(a.data, c.data, a.len) == 0);
    oc2_message_free(back);
    oc2_payload_free(p);

    /* An otupy command is answered in otupy, to its sender, same request_id. */
    oc2_message *otupy = decode(codec,
        "{\"content\":{\"request\":{\"action\":\"query\",\"target\":{\"features\":[]}}},"
        "\"request_id\":\"o-7\",\"from\":\"otupy-producer\"}");
    oc2_message *rsp = NULL;
    const char *body = "{\"status\":200,\"results\":{\"versions\":[\"1.0\"]}}";
    CHECK_RC(oc2_codec_response_from_json(codec, otupy, body, strlen(body), &rsp), OC2_RESULT_OK);
    CHECK_RC(oc2_message_set_from(rsp, "fw-1"), OC2_RESULT_OK);
    oc2_dialect d = 0;
    uint16_t status = 0;
    const oc2_strings *to = NULL;
    CHECK_RC(oc2_message_dialect(rsp, &d), OC2_RESULT_OK);
    CHECK(d == OC2_DIALECT_OTUPY);
    CHECK_RC(oc2_message_status(rsp, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    CHECK_RC(oc2_message_request_id(rsp, &s), OC2_RESULT_OK);
    CHECK_STR(s, "o-7");
    CHECK_RC(oc2_message_to(rsp, &to), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_get(to, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "otupy-producer");
    CHECK_RC(oc2_codec_encode(codec, rsp, OC2_ENCODING_JSON, d, &p), OC2_RESULT_OK);
    CHECK_RC(oc2_payload_bytes(p, &b), OC2_RESULT_OK);
    CHECK(memcmp(b.data, "{\"content\":{\"response\":", 23) == 0);
    oc2_payload_free(p);

    /* Invalid input is refused with the reason. */
    oc2_message *bad = NULL;
    CHECK_RC(oc2_codec_command_from_json(codec, "{\"action\":\"query\"}", 18, &bad), OC2_RESULT_MESSAGE_MISSING);
    last_error_is(codec, "target: required field is absent");
    CHECK_RC(oc2_codec_response_from_json(codec, otupy, "{\"status\":\"ok\"}", 15, &bad), OC2_RESULT_MESSAGE_TYPE);
    CHECK_RC(oc2_codec_message_from_json(codec, "{not json", 9, &bad), OC2_RESULT_MESSAGE_SYNTAX);
    char text[256];
    CHECK_RC(oc2_codec_last_error(codec, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strncmp(text, "malformed JSON: ", 16) == 0);
    CHECK(bad == NULL);

    oc2_message_free(rsp);
    oc2_message_free(otupy);
    oc2_message_free(cmd);
    oc2_codec_free(codec);
}

static void topics_follow_the_spec(void) {
    oc2_topics *t = NULL;
    oc2_strings *list = NULL;
    oc2_str s;
    size_t n = 0;
    char text[256];
    CHECK_RC(oc2_topics_new(&t), OC2_RESULT_OK);
    const char *profiles[] = {"slpf"};
    CHECK_RC(oc2_topics_subscriptions(t, OC2_ROLE_CONSUMER, "fw-1", profiles, 1, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &n), OC2_RESULT_OK);
    CHECK(n == 4);
    CHECK_RC(oc2_strings_get(list, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/cmd/all");
    CHECK_RC(oc2_strings_get(list, 2, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/cmd/ap/slpf");
    CHECK_RC(oc2_strings_get(list, 3, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/cmd/device/fw-1");
    oc2_strings_free(list);
    list = NULL;

    CHECK_RC(oc2_topics_subscriptions(t, OC2_ROLE_CONSUMER, NULL, NULL, 0, &list), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_topics_last_error(t, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: a consumer needs a device id") == 0);
    CHECK_RC(oc2_topics_subscriptions(t, 42, NULL, NULL, 0, &list), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_topics_subscriptions(t, OC2_ROLE_CONSUMER, "dev#1", NULL, 0, &list), OC2_RESULT_TOPIC);
    CHECK_RC(oc2_topics_last_error(t, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "invalid topic: device id 'dev#1' contains '#', which MQTT topic names forbid") == 0);
    CHECK(list == NULL);
    CHECK_RC(oc2_topics_validate_id(t, "device id", ""), OC2_RESULT_TOPIC);
    CHECK_RC(oc2_topics_last_error(t, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "invalid topic: device id must not be empty") == 0);
    CHECK_RC(oc2_topics_validate_id(t, "device id", "site/a"), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_last_error(t, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(n == 0);

    CHECK_RC(oc2_topics_set_prefix(t, "a/+"), OC2_RESULT_TOPIC);
    CHECK_RC(oc2_topics_set_prefix(t, "site-a/"), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_set_otupy_compatible(t, true), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_subscriptions(t, OC2_ROLE_PRODUCER, "p1", NULL, 0, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &n), OC2_RESULT_OK);
    CHECK(n == 3);
    CHECK_RC(oc2_strings_get(list, 2, &s), OC2_RESULT_OK);
    CHECK_STR(s, "site-a/oc2/rsp/device/p1");
    oc2_strings_free(list);

    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *cmd = decode(codec, QUERY);
    CHECK_RC(oc2_topics_command_topics(t, cmd, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_get(list, 1, &s), OC2_RESULT_OK);
    CHECK_STR(s, "site-a/oc2/cmd/device/fw-2");
    oc2_strings_free(list);
    oc2_message *rsp = NULL;
    CHECK_RC(oc2_codec_response_from_json(codec, cmd, "{\"status\":200}", 14, &rsp), OC2_RESULT_OK);
    /* Published once, on oc2/rsp, by default (issue 16: OC2_RESPONSE_TOPICS_*). */
    CHECK_RC(oc2_topics_response_topics(t, rsp, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &n), OC2_RESULT_OK);
    CHECK(n == 1);
    CHECK_RC(oc2_strings_get(list, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "site-a/oc2/rsp");
    oc2_strings_free(list);

    bool match = false;
    CHECK_RC(oc2_topic_filter_matches("oc2/cmd/+", "oc2/cmd/all", &match), OC2_RESULT_OK);
    CHECK(match);
    CHECK_RC(oc2_topic_filter_matches("oc2/cmd/+", "oc2/cmd/ap/slpf", &match), OC2_RESULT_OK);
    CHECK(!match);
    oc2_message_free(rsp);
    oc2_message_free(cmd);
    oc2_codec_free(codec);
    oc2_topics_free(t);
}

static void duplicates_are_detected(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *m = decode(codec, QUERY);
    oc2_dedup *d = NULL;
    bool is_new = false;
    CHECK_RC(oc2_dedup_new(1000, OC2_DEDUP_DEFAULT_CAPACITY, &d), OC2_RESULT_OK);
    CHECK_RC(oc2_dedup_check(d, m, NULL, 0, 0, &is_new), OC2_RESULT_OK);
    CHECK(is_new);
    CHECK_RC(oc2_dedup_check(d, m, NULL, 0, 999, &is_new), OC2_RESULT_OK);
    CHECK(!is_new);
    CHECK_RC(oc2_dedup_check(d, m, NULL, 0, 2000, &is_new), OC2_RESULT_OK);
    CHECK(is_new); /* the window passed */
    CHECK_RC(oc2_dedup_check_payload(d, LIT("garbage"), 2000, &is_new), OC2_RESULT_OK);
    CHECK(is_new);
    CHECK_RC(oc2_dedup_check_payload(d, LIT("garbage"), 2001, &is_new), OC2_RESULT_OK);
    CHECK(!is_new);
    oc2_dedup_stats st;
    size_t n = 0;
    CHECK_RC(oc2_dedup_get_stats(d, &st), OC2_RESULT_OK);
    CHECK(st.checked == 5 && st.duplicates == 2 && st.expired == 1 && st.evicted == 0);
    CHECK_RC(oc2_dedup_len(d, &n), OC2_RESULT_OK);
    CHECK(n == 2);
    CHECK_RC(oc2_dedup_check(d, m, NULL, 1, 0, &is_new), OC2_RESULT_NULL_PARAMETER);
    oc2_dedup_free(d);
    oc2_message_free(m);
    oc2_codec_free(codec);

    /* A capacity of 0 is refused, with the text every language gives. */
    oc2_dedup *none = NULL;
    char text[128];
    size_t n_text = 0;
    CHECK_RC(oc2_dedup_new(1000, 0, &none), OC2_RESULT_CONFIG);
    CHECK(none == NULL);
    CHECK_RC(oc2_dedup_options_check(1000, 0, text, sizeof text, &n_text), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: capacity: must be at least 1") == 0);
    CHECK_RC(oc2_dedup_options_check(0, 1, text, sizeof text, &n_text), OC2_RESULT_OK);
    CHECK(n_text == 0 && text[0] == 0);
    CHECK_RC(oc2_dedup_new(0, 1, &none), OC2_RESULT_OK);
    oc2_dedup_free(none);
}

typedef struct {
    int calls;
    oc2_close_reason reason;
    size_t missing;
    char first_missing[32];
    void *data;
} expired_log;

static void on_closed(void *userdata, const oc2_closed *closed) {
    expired_log *log = userdata;
    log->calls++;
    log->reason = closed->reason;
    log->missing = closed->missing_count;
    log->data = closed->userdata;
    oc2_str s;
    if (oc2_strings_get(closed->missing, 0, &s) == OC2_RESULT_OK)
        snprintf(log->first_missing, sizeof log->first_missing, "%s", s.data);
}

static oc2_message *response_from(oc2_codec *codec, const char *from, int status) {
    char text[256];
    snprintf(text, sizeof text,
             "{\"headers\":{\"request_id\":\"rid-1\",\"from\":\"%s\"},\"body\":{\"openc2\":{\"response\":{\"status\":%d}}}}",
             from, status);
    return decode(codec, text);
}

static void responses_are_correlated(void) {
    oc2_codec *codec = NULL;
    oc2_codec_new(&codec);
    oc2_message *cmd = decode(codec, QUERY); /* to fw-1, fw-2 */
    oc2_correlator *c = NULL;
    int token = 7;
    oc2_outcome out;
    char text[256];
    size_t n;
    CHECK_RC(oc2_correlator_new(&c), OC2_RESULT_OK);
    bool opened = false;
    CHECK_RC(oc2_correlator_open_command(c, cmd, 1000, &token, &opened), OC2_RESULT_OK);
    CHECK(opened);
    CHECK_RC(oc2_correlator_open_command(c, cmd, 1000, &token, NULL), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_correlator_last_error(c, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: an exchange with request_id 'rid-1' is already open") == 0);

    oc2_message *r = response_from(codec, "fw-1", 102);
    CHECK_RC(oc2_correlator_on_response(c, r, &out), OC2_RESULT_OK);
    CHECK(out.kind == OC2_OUTCOME_OPEN && !out.is_final && out.expected && out.userdata == &token);
    oc2_message_free(r);
    r = response_from(codec, "fw-1", 200);
    CHECK_RC(oc2_correlator_on_response(c, r, &out), OC2_RESULT_OK);
    CHECK(out.kind == OC2_OUTCOME_OPEN && out.is_final);
    oc2_message_free(r);
    oc2_strings *missing = NULL;
    oc2_str s;
    CHECK_RC(oc2_correlator_missing(c, "rid-1", &missing), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_get(missing, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "fw-2");
    oc2_strings_free(missing);
    r = response_from(codec, "fw-2", 200);
    CHECK_RC(oc2_correlator_on_response(c, r, &out), OC2_RESULT_OK);
    CHECK(out.kind == OC2_OUTCOME_COMPLETE && out.userdata == &token);
    CHECK_RC(oc2_correlator_on_response(c, r, &out), OC2_RESULT_OK);
    CHECK(out.kind == OC2_OUTCOME_UNSOLICITED && out.userdata == NULL);
    oc2_message_free(r);
    uint64_t count = 0, deadline = 0;
    CHECK_RC(oc2_correlator_unsolicited(c, &count), OC2_RESULT_OK);
    CHECK(count == 1);
    CHECK_RC(oc2_correlator_next_deadline(c, &deadline), OC2_RESULT_ABSENT);

    /* Deadlines close exchanges and report who did not answer. */
    CHECK_RC(oc2_correlator_open_command(c, cmd, 500, &token, NULL), OC2_RESULT_OK);
    CHECK_RC(oc2_correlator_open(c, "broadcast", 0, 800, NULL), OC2_RESULT_OK);
    CHECK_RC(oc2_correlator_next_deadline(c, &deadline), OC2_RESULT_OK);
    CHECK(deadline == 500);
    expired_log log = {0};
    CHECK_RC(oc2_correlator_expire(c, 600, NULL, &log), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_correlator_expire(c, 600, on_closed, &log), OC2_RESULT_OK);
    CHECK(log.calls == 1 && log.reason == OC2_CLOSE_DEADLINE && log.missing == 2 && log.data == &token);
    CHECK(strcmp(log.first_missing, "fw-1") == 0 || strcmp(log.first_missing, "fw-2") == 0);
    CHECK_RC(oc2_correlator_len(c, &n), OC2_RESULT_OK);
    CHECK(n == 1);
    void *data = &token;
    CHECK_RC(oc2_correlator_close(c, "broadcast", &data), OC2_RESULT_OK);
    CHECK(data == NULL);
    CHECK_RC(oc2_correlator_close(c, "broadcast", &data), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_correlator_missing(c, "broadcast", &missing), OC2_RESULT_ABSENT);

    /* A command without request_id cannot be correlated. */
    oc2_message *bare = decode(codec, "{\"action\":\"query\",\"target\":{\"features\":[]}}");
    CHECK_RC(oc2_correlator_open_command(c, bare, 1, NULL, NULL), OC2_RESULT_ABSENT);
    oc2_message_free(bare);

    /* response_requested decides what is awaited, as in every producer:
     * none opens nothing; ack is complete at each responder's 102. */
    oc2_message *none = decode(codec, "{\"headers\":{\"request_id\":\"rid-n\",\"to\":[\"fw-1\"]},\"body\":{\"openc2\":"
                                      "{\"request\":{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},"
                                      "\"args\":{\"response_requested\":\"none\"}}}}}");
    opened = true;
    CHECK_RC(oc2_correlator_open_command(c, none, 1000, NULL, &opened), OC2_RESULT_OK);
    CHECK(!opened);
    CHECK_RC(oc2_correlator_len(c, &n), OC2_RESULT_OK);
    CHECK(n == 0);
    oc2_message_free(none);
    oc2_message *ack = decode(codec, "{\"headers\":{\"request_id\":\"rid-1\",\"to\":[\"fw-1\"]},\"body\":{\"openc2\":"
                                     "{\"request\":{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},"
                                     "\"args\":{\"response_requested\":\"ack\"}}}}}");
    CHECK_RC(oc2_correlator_open_command(c, ack, 1000, &token, &opened), OC2_RESULT_OK);
    CHECK(opened);
    r = response_from(codec, "fw-1", 102);
    CHECK_RC(oc2_correlator_on_response(c, r, &out), OC2_RESULT_OK);
    CHECK(out.kind == OC2_OUTCOME_COMPLETE && out.userdata == &token);
    oc2_message_free(r);
    oc2_message_free(ack);
    oc2_correlator_free(c);
    oc2_message_free(cmd);
    oc2_codec_free(codec);
}

int main(void) {
    RUN(result_text_names_every_code);
    RUN(small_buffers_give_the_needed_size);
    RUN(version_is_static_text);
    RUN(result_str_is_the_same_static_text);
    RUN(version_macros_match_the_library);
    RUN(callbacks_and_options_check_their_arguments);
    RUN(config_settings_are_set_by_name_for_every_kind);
    RUN(config_settings_by_name_refuse_unknown_names_and_bad_values);
    RUN(consumer_options_are_set_by_name);
    RUN(null_arguments_are_refused);
    RUN(decoded_message_exposes_its_fields);
    RUN(decode_errors_say_what_and_where);
    RUN(invalid_utf8_is_refused);
    RUN(a_payload_format_mqtt_does_not_define_is_refused_by_core);
    RUN(huge_payloads_are_refused_before_parsing);
    RUN(commands_are_built_encoded_and_answered);
    RUN(topics_follow_the_spec);
    RUN(duplicates_are_detected);
    RUN(responses_are_correlated);
    return TEST_SUMMARY("api");
}
