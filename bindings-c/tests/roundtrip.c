/* Producer, consumer (pull, callback, handler and inline styles) and monitor against a real
 * Mosquitto, and the C consumer answering the Rust CLI `oc2mqtt send`.
 *
 * Environment: OC2_TEST_BROKER (mqtt://127.0.0.1:PORT of a broker started
 * by tests/broker/broker.py) and OC2_TEST_CLI (path of the oc2mqtt binary). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "testing.h"

static const char *broker;

#define DENY "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"}}"

static oc2_config *make_config(const char *url) {
    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_new(url, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_connect_timeout(b, 5), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_builder_free(b);
    return c;
}

static oc2_consumer *device(oc2_config *c, const char *id) {
    const char *profiles[] = {"slpf"};
    const char *pairs[] = {"deny:ipv4_net", "query:features"};
    oc2_consumer *consumer = NULL;
    CHECK_RC(oc2_consumer_connect(c, id, profiles, 1, pairs, 2, &consumer), OC2_RESULT_OK);
    return consumer;
}

static void config_errors_name_the_setting(void) {
    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    char text[256];
    size_t n;
    CHECK_RC(oc2_config_builder_new(broker, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_qos(b, 0), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_builder_last_error(b, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: qos (oc2_config_builder_set_qos) is 0, but OpenC2 over MQTT uses 1 or 2") == 0);
    CHECK_RC(oc2_config_builder_set_qos(b, 1), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_keep_alive(b, 301), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_builder_last_error(b, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: keep alive (oc2_config_builder_set_keep_alive) is 301, but MQTT-T allows at most 300") == 0);
    CHECK_RC(oc2_config_builder_set_keep_alive(b, 30), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_mqtt_version(b, 7), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_config_builder_set_tls(b, "/nonexistent/ca.pem", NULL, NULL), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_IO);
    CHECK_RC(oc2_config_builder_last_error(b, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strstr(text, "/nonexistent/ca.pem") != NULL);
    CHECK(c == NULL);
    oc2_config_builder_free(b);

    CHECK_RC(oc2_config_builder_new("http://127.0.0.1:1", &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_builder_last_error(b, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strstr(text, "unsupported scheme 'http'") != NULL);
    oc2_config_builder_free(b);
    /* Consumer options are checked before connecting. */
    c = make_config(broker);
    oc2_consumer *consumer = NULL;
    const char *bad_pairs[] = {"deny-ipv4_net"};
    CHECK_RC(oc2_consumer_connect(c, "fw-x", NULL, 0, bad_pairs, 1, &consumer), OC2_RESULT_CONFIG);
    CHECK_RC(oc2_config_last_error(c, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: pair 'deny-ipv4_net': expected ACTION:TARGET, e.g. deny:ipv4_connection") == 0);
    CHECK_RC(oc2_consumer_connect(c, "fw#x", NULL, 0, NULL, 0, &consumer), OC2_RESULT_TOPIC);
    CHECK_RC(oc2_config_last_error(c, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "invalid topic: device id 'fw#x' contains '#', which MQTT topic names forbid") == 0);
    CHECK(consumer == NULL);
    oc2_config_free(c);
    c = NULL;

    CHECK_RC(oc2_config_builder_new(NULL, &b), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_producer_connect(NULL, "p", NULL), OC2_RESULT_NULL_PARAMETER);
    oc2_config_free(NULL);
    oc2_config_builder_free(NULL);
    oc2_producer_free(NULL);
    oc2_consumer_free(NULL);
    oc2_monitor_free(NULL);
    oc2_exchange_free(NULL);
    oc2_command_free(NULL);
    oc2_monitor_event_free(NULL);
}

static void unreachable_broker_is_a_connect_error(void) {
    oc2_config *c = make_config("mqtt://127.0.0.1:1");
    oc2_producer *p = NULL;
    char text[512];
    size_t n;
    CHECK_RC(oc2_producer_connect(c, "p-nowhere", &p), OC2_RESULT_CONNECT);
    CHECK(p == NULL);
    CHECK_RC(oc2_config_last_error(c, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(n > 0 && strstr(text, "127.0.0.1:1") != NULL);
    if (!strstr(text, "127.0.0.1:1")) fprintf(stderr, "  detail: %s\n", text);
    oc2_config_free(c);
}

static void pull_style_round_trip(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer *consumer = device(c, "fw-pull");
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "p-pull", &producer), OC2_RESULT_OK);
    oc2_command *cmd = NULL;
    CHECK_RC(oc2_consumer_next(consumer, 0, &cmd), OC2_RESULT_TIMEOUT);

    const char *to[] = {"fw-pull"};
    oc2_exchange *x = NULL;
    CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_next(consumer, 5000, &cmd), OC2_RESULT_OK);
    const oc2_message *m = NULL;
    oc2_str s;
    CHECK_RC(oc2_command_message(cmd, &m), OC2_RESULT_OK);
    CHECK_RC(oc2_message_action(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "deny");
    CHECK_RC(oc2_message_target_json(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "\"10.0.0.0/8\"");
    CHECK_RC(oc2_message_from(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "p-pull");
    CHECK_RC(oc2_message_topic(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/cmd/device/fw-pull");
    /* A 102 first, then the final response. */
    const char *interim = "{\"status\":102}";
    const char *final = "{\"status\":200,\"results\":{\"x-acme\":{\"rule\":17}}}";
    CHECK_RC(oc2_consumer_reply(consumer, cmd, interim, strlen(interim)), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_reply(consumer, cmd, final, strlen(final)), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_reply(consumer, cmd, "{\"status\":\"x\"}", 14), OC2_RESULT_MESSAGE_TYPE);
    char text[256];
    size_t n;
    CHECK_RC(oc2_consumer_last_error(consumer, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strstr(text, "status") != NULL);
    oc2_command_free(cmd);

    oc2_message *r = NULL;
    uint16_t status = 0;
    uint64_t latency = 0;
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 102);
    oc2_message_free(r);
    r = NULL;
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    CHECK_RC(oc2_message_from(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "fw-pull");
    CHECK_RC(oc2_message_content_json(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "{\"results\":{\"x-acme\":{\"rule\":17}},\"status\":200}");
    CHECK_RC(oc2_message_latency_us(r, &latency), OC2_RESULT_OK);
    CHECK(latency > 0 && latency < 5000000);
    CHECK_RC(oc2_message_topic(r, &s), OC2_RESULT_OK);
    oc2_message_free(r);
    r = NULL;
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_DONE);
    CHECK(r == NULL);
    bool complete = false;
    CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
    CHECK(complete);
    oc2_exchange_free(x);

    /* Built-in answers never reach the application. */
    const char *features = "{\"action\":\"query\",\"target\":{\"features\":[\"versions\",\"profiles\"]}}";
    CHECK_RC(oc2_producer_send(producer, features, strlen(features), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_wait(x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(x, 0, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_content_json(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "{\"results\":{\"profiles\":[\"slpf\"],\"versions\":[\"1.0\"]},\"status\":200}");
    oc2_message_free(r);
    oc2_exchange_free(x);
    /* Sent and waited for in one call: the responses are in when it returns. */
    CHECK_RC(oc2_producer_send_wait(producer, features, strlen(features), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
    CHECK(complete);
    CHECK_RC(oc2_exchange_request_id(x, &s), OC2_RESULT_OK);
    CHECK(s.len > 0);
    CHECK_RC(oc2_exchange_next(x, 0, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    oc2_message_free(r);
    r = NULL;
    CHECK_RC(oc2_exchange_next(x, 0, &r), OC2_RESULT_DONE);
    oc2_exchange_free(x);
    const char *contain = "{\"action\":\"contain\",\"target\":{\"device\":{\"hostname\":\"h1\"}}}";
    CHECK_RC(oc2_producer_send(producer, contain, strlen(contain), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 501);
    oc2_message_free(r);
    oc2_exchange_free(x);
    CHECK_RC(oc2_consumer_next(consumer, 100, &cmd), OC2_RESULT_TIMEOUT);

    /* Nobody answers: the exchange ends at its timeout, naming who is missing. */
    const char *ghost[] = {"fw-ghost"};
    CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), ghost, 1, 200, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(x, 10, &r), OC2_RESULT_TIMEOUT);
    CHECK_RC(oc2_exchange_next(x, OC2_WAIT_FOREVER, &r), OC2_RESULT_DONE);
    oc2_strings *missing = NULL;
    CHECK_RC(oc2_exchange_missing(x, &missing), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_get(missing, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "fw-ghost");
    oc2_strings_free(missing);
    oc2_exchange_free(x);
    CHECK_RC(oc2_producer_send_wait(producer, DENY, strlen(DENY), ghost, 1, 200, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
    CHECK(!complete);
    CHECK_RC(oc2_exchange_next(x, 0, &r), OC2_RESULT_DONE);
    CHECK_RC(oc2_exchange_missing(x, &missing), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_get(missing, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "fw-ghost");
    oc2_strings_free(missing);
    oc2_exchange_free(x);
    CHECK_RC(oc2_producer_send_wait(producer, "{\"action\":\"query\"}", 18, NULL, 0, 100, &x),
             OC2_RESULT_MESSAGE_MISSING);

    /* Bad input to send is refused with the reason. */
    CHECK_RC(oc2_producer_send(producer, "{\"action\":\"q\xff\"}", 15, NULL, 0, 100, &x), OC2_RESULT_INVALID_UTF8);
    CHECK_RC(oc2_producer_last_error(producer, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "JSON text is not valid UTF-8 (at byte 12)") == 0);
    CHECK_RC(oc2_producer_send(producer, "{\"action\":\"query\"}", 18, NULL, 0, 100, &x),
             OC2_RESULT_MESSAGE_MISSING);
    CHECK_RC(oc2_producer_last_error(producer, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "target: required field is absent") == 0);

    oc2_stats st;
    CHECK_RC(oc2_producer_stats(producer, &st), OC2_RESULT_OK);
    CHECK(st.published >= 4 && st.received >= 4);
    CHECK(st.publish_errors == 0 && st.reconnects == 0 && st.stale == 0);
    CHECK(st.mqtt_version == OC2_MQTT_V5);
    CHECK_RC(oc2_consumer_stats(consumer, &st), OC2_RESULT_OK);
    CHECK(st.mqtt_version == OC2_MQTT_V5 && st.stale == 0);
    /* The broker in use, with the buffer rules of every text output. */
    CHECK_RC(oc2_producer_broker(producer, NULL, 0, &n), OC2_RESULT_INSUFFICIENT_SIZE);
    CHECK(n == strlen(broker) + 1);
    CHECK_RC(oc2_producer_broker(producer, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, broker) == 0);
    CHECK_RC(oc2_consumer_broker(consumer, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, broker) == 0);
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_next(consumer, 1000, &cmd), OC2_RESULT_DONE);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A command created `age_ms` ago, addressed to `to`, as the codec builds it. */
static oc2_message *command_created_ago(oc2_codec *codec, const char *request_id, const char *to,
                                        int64_t age_ms) {
    char json[512];
    int len = snprintf(json, sizeof json,
                       "{\"headers\":{\"request_id\":\"%s\",\"created\":%lld,\"from\":\"p-fresh\","
                       "\"to\":[\"%s\"]},\"body\":{\"openc2\":{\"request\":" DENY "}}}",
                       request_id, (long long)(now_ms() - age_ms), to);
    oc2_message *m = NULL;
    CHECK(len > 0 && (size_t)len < sizeof json);
    CHECK_RC(oc2_codec_message_from_json(codec, json, (size_t)len, &m), OC2_RESULT_OK);
    return m;
}

struct waiting {
    oc2_exchange *x;
    oc2_result rc;
    atomic_int done;
};

static void *wait_for_next(void *arg) {
    struct waiting *w = arg;
    oc2_message *r = NULL;
    w->rc = oc2_exchange_next(w->x, OC2_WAIT_FOREVER, &r);
    oc2_message_free(r);
    atomic_store(&w->done, 1);
    return NULL;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void cancel_from_another_thread_ends_a_wait_at_once(void) {
    oc2_config *c = make_config(broker);
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "p-cancel", &producer), OC2_RESULT_OK);
    const char *to[] = {"fw-nobody"};
    struct waiting w = {.x = NULL, .rc = OC2_RESULT_OK, .done = 0};
    CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 30000, &w.x), OC2_RESULT_OK);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_for_next, &w) == 0);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK(atomic_load(&w.done) == 0); /* fw-nobody never answers: the 30 s wait goes on */
    double started = now_s();
    CHECK_RC(oc2_exchange_cancel(w.x), OC2_RESULT_OK);
    pthread_join(t, NULL);
    CHECK(now_s() - started < 1.0);
    CHECK_RC(w.rc, OC2_RESULT_DONE);
    bool complete = true;
    CHECK_RC(oc2_exchange_is_complete(w.x, &complete), OC2_RESULT_OK);
    CHECK(!complete);
    oc2_strings *missing = NULL;
    CHECK_RC(oc2_exchange_missing(w.x, &missing), OC2_RESULT_OK);
    size_t n_missing = 0;
    CHECK_RC(oc2_strings_len(missing, &n_missing), OC2_RESULT_OK);
    CHECK(n_missing == 1);
    oc2_str m;
    CHECK_RC(oc2_strings_get(missing, 0, &m), OC2_RESULT_OK);
    CHECK_STR(m, "fw-nobody");
    oc2_strings_free(missing);
    CHECK_RC(oc2_exchange_cancel(NULL), OC2_RESULT_NULL_PARAMETER);
    oc2_exchange_free(w.x);
    oc2_producer_free(producer);
    oc2_config_free(c);
}

static void stale_command_is_not_executed(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer_options *o = NULL;
    uint64_t window = 0;
    CHECK_RC(oc2_consumer_options_new("fw-fresh", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_freshness(o, &window), OC2_RESULT_OK);
    CHECK(window > 0); /* the library's default: on */
    CHECK_RC(oc2_consumer_options_add_profile(o, "slpf"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_add_pair(o, "deny", "ipv4_net"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_freshness(o, 600), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_freshness(o, &window), OC2_RESULT_OK);
    CHECK(window == 600);
    CHECK_RC(oc2_consumer_options_set_freshness(NULL, 600), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_add_pair(o, "deny", NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_freshness(o, NULL), OC2_RESULT_NULL_PARAMETER);
    oc2_consumer *consumer = NULL;
    CHECK_RC(oc2_consumer_connect_with(c, NULL, &consumer), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_connect_with(c, o, &consumer), OC2_RESULT_OK);
    oc2_consumer_options_free(o); /* the consumer keeps its own copy */
    oc2_consumer_options_free(NULL);
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "p-fresh", &producer), OC2_RESULT_OK);
    oc2_codec *codec = NULL;
    CHECK_RC(oc2_codec_new(&codec), OC2_RESULT_OK);

    /* Created an hour ago: not executed, not answered, counted. */
    oc2_message *old = command_created_ago(codec, "5a1e0000-0000-4000-8000-000000000001", "fw-fresh", 3600000);
    oc2_exchange *x = NULL;
    oc2_message *r = NULL;
    CHECK_RC(oc2_producer_send_message(producer, old, OC2_ENCODING_JSON, OC2_DIALECT_SPEC, 0, 1000, &x),
             OC2_RESULT_OK);
    oc2_command *cmd = NULL;
    CHECK_RC(oc2_consumer_next(consumer, 500, &cmd), OC2_RESULT_TIMEOUT);
    CHECK_RC(oc2_exchange_next(x, OC2_WAIT_FOREVER, &r), OC2_RESULT_DONE);
    oc2_exchange_free(x);
    oc2_message_free(old);

    /* Created five seconds ago: within the window, it runs. */
    oc2_message *recent = command_created_ago(codec, "5a1e0000-0000-4000-8000-000000000002", "fw-fresh", 5000);
    CHECK_RC(oc2_producer_send_message(producer, recent, OC2_ENCODING_JSON, OC2_DIALECT_SPEC, 0, 5000, &x),
             OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_next(consumer, 5000, &cmd), OC2_RESULT_OK);
    const oc2_message *m = NULL;
    oc2_str s;
    CHECK_RC(oc2_command_message(cmd, &m), OC2_RESULT_OK);
    CHECK_RC(oc2_message_request_id(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "5a1e0000-0000-4000-8000-000000000002");
    CHECK_RC(oc2_consumer_reply_status(consumer, cmd, 200, NULL), OC2_RESULT_OK);
    oc2_command_free(cmd);
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    uint16_t status = 0;
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    oc2_message_free(r);
    oc2_exchange_free(x);
    oc2_message_free(recent);

    oc2_stats st;
    CHECK_RC(oc2_consumer_stats(consumer, &st), OC2_RESULT_OK);
    CHECK(st.stale == 1);
    CHECK_RC(oc2_consumer_next(consumer, 100, &cmd), OC2_RESULT_TIMEOUT);
    oc2_codec_free(codec);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

typedef struct {
    atomic_int calls;
} served;

static void answer(void *userdata, const oc2_consumer *consumer, oc2_command *cmd) {
    served *state = userdata;
    const oc2_message *m = NULL;
    oc2_str action;
    char body[128];
    if (oc2_command_message(cmd, &m) == OC2_RESULT_OK && oc2_message_action(m, &action) == OC2_RESULT_OK) {
        int len = snprintf(body, sizeof body, "{\"status\":200,\"status_text\":\"did %s\"}", action.data);
        if (oc2_consumer_reply(consumer, cmd, body, (size_t)len) == OC2_RESULT_OK) atomic_fetch_add(&state->calls, 1);
    }
    oc2_command_free(cmd);
}

static void callback_style_round_trip(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer *consumer = device(c, "fw-cb");
    oc2_producer *producer = NULL;
    served state = {0};
    CHECK_RC(oc2_producer_connect(c, "p-cb", &producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve(consumer, NULL, &state), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_serve(consumer, answer, &state), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve(consumer, answer, &state), OC2_RESULT_INVALID_ARGUMENT);
    const char *to[] = {"fw-cb"};
    int complete_count = 0;
    for (int i = 0; i < 20; i++) {
        oc2_exchange *x = NULL;
        oc2_message *r = NULL;
        oc2_str s;
        bool complete = false;
        CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &x), OC2_RESULT_OK);
        CHECK_RC(oc2_exchange_next(x, OC2_WAIT_FOREVER, &r), OC2_RESULT_OK);
        CHECK_RC(oc2_message_status_text(r, &s), OC2_RESULT_OK);
        CHECK_STR(s, "did deny");
        CHECK_RC(oc2_exchange_wait(x), OC2_RESULT_OK);
        CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
        complete_count += complete;
        oc2_message_free(r);
        oc2_exchange_free(x);
    }
    CHECK(complete_count == 20);
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK); /* joins the callback thread */
    CHECK(atomic_load(&state.calls) == 20);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

/* Callback style under a handler timeout: a command the callback has not
 * answered in time is answered 500 by the library, as in every serve style;
 * the callback's late reply is dropped; commands still come one at a time. */
typedef struct {
    atomic_int late_rc;
    char late_text[160];
    atomic_int order[4];
    atomic_int seen;
} slow_served;

static void answer_slowly(void *userdata, const oc2_consumer *consumer, oc2_command *cmd) {
    slow_served *state = userdata;
    const oc2_message *m = NULL;
    oc2_str action;
    if (oc2_command_message(cmd, &m) == OC2_RESULT_OK && oc2_message_action(m, &action) == OC2_RESULT_OK) {
        bool slow = strcmp(action.data, "stop") == 0;
        int i = atomic_fetch_add(&state->seen, 1);
        if (i < 4) atomic_store(&state->order[i], slow ? 1 : 2);
        if (slow) {
            struct timespec t = {0, 800 * 1000 * 1000};
            nanosleep(&t, NULL);
            oc2_result rc = oc2_consumer_reply_status(consumer, cmd, 200, "too late");
            size_t n = 0;
            oc2_consumer_last_error(consumer, state->late_text, sizeof state->late_text, &n);
            atomic_store(&state->late_rc, (int)rc);
        } else {
            oc2_consumer_reply_status(consumer, cmd, 200, "in time");
        }
    }
    oc2_command_free(cmd);
}

static void callback_style_keeps_the_handler_timeout(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer_options *o = NULL;
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    slow_served state = {.late_rc = -1};
    CHECK_RC(oc2_consumer_options_new("fw-cbt", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_handler_timeout(o, 300), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect_with(c, o, &consumer), OC2_RESULT_OK);
    oc2_consumer_options_free(o);
    CHECK_RC(oc2_producer_connect(c, "p-cbt", &producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve(consumer, answer_slowly, &state), OC2_RESULT_OK);
    const char *to[] = {"fw-cbt"};
    const char *stop = "{\"action\":\"stop\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"}}";
    oc2_exchange *slow = NULL;
    oc2_exchange *fast = NULL;
    oc2_message *r = NULL;
    oc2_str s;
    uint16_t status = 0;
    CHECK_RC(oc2_producer_send(producer, stop, strlen(stop), to, 1, 5000, &slow), OC2_RESULT_OK);
    /* Sent while the callback holds "stop": it waits its turn. */
    CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &fast), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(slow, OC2_WAIT_FOREVER, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 500);
    CHECK_RC(oc2_message_status_text(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "handler timed out after 0.3 s");
    oc2_message_free(r);
    CHECK_RC(oc2_exchange_next(slow, OC2_WAIT_FOREVER, &r), OC2_RESULT_DONE); /* one final answer */
    CHECK_RC(oc2_exchange_next(fast, OC2_WAIT_FOREVER, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status_text(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "in time");
    oc2_message_free(r);
    oc2_exchange_free(fast);
    oc2_exchange_free(slow);
    /* The late reply was refused: the callback returned before "deny" came. */
    CHECK(atomic_load(&state.late_rc) == OC2_RESULT_TIMEOUT);
    CHECK(strcmp(state.late_text,
                 "timed out: the command was answered 500 at its handler timeout (0.3 s); this answer was dropped") == 0);
    CHECK(atomic_load(&state.seen) == 2 && atomic_load(&state.order[0]) == 1 && atomic_load(&state.order[1]) == 2);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

/* The builder options Python, Node and the CLI also have: a consumer
 * group (each command reaches one member), the rate limit `query features`
 * reports, the largest payload accepted, and a message expiry on publishes. */
/* Handler style: the handler returns the status; the core's serve loop
 * answers it (and decides what a failure, a bad status or a timeout means). */
/* The status codes a handler's invalid status is told to choose from. */
#define STATUS_CODES "expected one of 102, 200, 400, 401, 403, 404, 500, 501, 503"

static atomic_int handled;

static uint16_t handle(void *userdata, const oc2_message *command, oc2_reply *reply) {
    (void)userdata;
    oc2_str action;
    atomic_fetch_add(&handled, 1);
    if (oc2_message_action(command, &action) != OC2_RESULT_OK) return 0;
    if (strcmp(action.data, "deny") == 0) {
        const char *results = "{\"x-acme\":{\"rule\":7}}";
        CHECK_RC(oc2_reply_set_results(reply, "[1]", 3), OC2_RESULT_MESSAGE_TYPE);
        CHECK_RC(oc2_reply_set_results(reply, "{", 1), OC2_RESULT_MESSAGE_SYNTAX);
        CHECK_RC(oc2_reply_set_results(reply, results, strlen(results)), OC2_RESULT_OK);
        CHECK_RC(oc2_reply_set_text(reply, "denied"), OC2_RESULT_OK);
        return 200;
    }
    if (strcmp(action.data, "contain") == 0) {
        oc2_reply_set_text(reply, "no such host");
        return 0;
    }
    if (strcmp(action.data, "allow") == 0) return 999;
    if (strcmp(action.data, "restart") == 0) return 1000;
    if (strcmp(action.data, "locate") == 0) {
        oc2_reply_set_text(reply, "");
        return 0;
    }
    if (strcmp(action.data, "start") == 0) return 102;
    if (strcmp(action.data, "stop") == 0) {
        struct timespec t = {2, 0};
        nanosleep(&t, NULL);
        return 200;
    }
    return 0;
}

static char *final_answer(oc2_producer *producer, const char *action, uint16_t *status) {
    char command[128];
    const char *to[] = {"fw-h"};
    oc2_exchange *x = NULL;
    oc2_message *r = NULL;
    oc2_str text = {0};
    snprintf(command, sizeof command, "{\"action\":\"%s\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"}}", action);
    CHECK_RC(oc2_producer_send(producer, command, strlen(command), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(x, OC2_WAIT_FOREVER, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, status), OC2_RESULT_OK);
    char *out = strdup(oc2_message_status_text(r, &text) == OC2_RESULT_OK ? text.data : "");
    oc2_message_free(r);
    oc2_exchange_free(x);
    return out;
}

static void handler_style_answers_the_status_it_returns(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer_options *o = NULL;
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_consumer_options_new("fw-h", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_handler_timeout(o, 500), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect_with(c, o, &consumer), OC2_RESULT_OK);
    oc2_consumer_options_free(o);
    CHECK_RC(oc2_producer_connect(c, "p-h", &producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve_handler(consumer, NULL, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_serve_handler(consumer, handle, NULL), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve_handler(consumer, handle, NULL), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_serve(consumer, answer, NULL), OC2_RESULT_INVALID_ARGUMENT);
    char err[64];
    size_t written = 0;
    CHECK_RC(oc2_consumer_last_error(consumer, err, sizeof err, &written), OC2_RESULT_OK);
    CHECK(strcmp(err, "this consumer already serves") == 0);

    uint16_t status = 0;
    char *text = final_answer(producer, "deny", &status);
    CHECK(status == 200 && strcmp(text, "denied") == 0);
    free(text);
    text = final_answer(producer, "contain", &status);
    CHECK(status == 500 && strcmp(text, "no such host") == 0);
    free(text);
    /* What a status means and every text for one that is no response are
     * core's, the same in every language (HandlerResult in core/src/rules.rs). */
    text = final_answer(producer, "allow", &status);
    CHECK(status == 500 && strcmp(text, "the handler returned an invalid status: 999; " STATUS_CODES) == 0);
    free(text);
    text = final_answer(producer, "restart", &status);
    CHECK(status == 500 && strcmp(text, "the handler returned an invalid status: 1000; " STATUS_CODES) == 0);
    free(text);
    text = final_answer(producer, "scan", &status);
    CHECK(status == 500 && strcmp(text, "the handler failed") == 0);
    free(text);
    text = final_answer(producer, "locate", &status);
    CHECK(status == 500 && strcmp(text, "the handler failed") == 0);
    free(text);
    text = final_answer(producer, "start", &status);
    CHECK(status == 500 && strcmp(text, "the handler returned the interim status 102 as its final answer") == 0);
    free(text);
    text = final_answer(producer, "stop", &status);
    CHECK(status == 500 && strcmp(text, "handler timed out after 0.5 s") == 0);
    free(text);
    text = final_answer(producer, "deny", &status);
    CHECK(status == 200); /* still serving */
    free(text);
    CHECK(atomic_load(&handled) == 9);
    /* Close waits for the serve loop, not for the handler let go at its timeout. */
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

/* Inline style: the same handler contract, called on the library's network
 * thread (one at a time, never on the caller's), where only calls that do
 * not wait are allowed: closing from there is refused. */
typedef struct {
    oc2_consumer *consumer;
    atomic_int calls;
    atomic_int close_refused;
    pthread_t caller;
    atomic_int on_caller;
} inline_state;

static uint16_t handle_inline(void *userdata, const oc2_message *command, oc2_reply *reply) {
    inline_state *state = userdata;
    oc2_str action;
    atomic_fetch_add(&state->calls, 1);
    if (pthread_equal(pthread_self(), state->caller)) atomic_fetch_add(&state->on_caller, 1);
    if (oc2_message_action(command, &action) != OC2_RESULT_OK) return 0;
    if (strcmp(action.data, "deny") == 0) {
        oc2_reply_set_text(reply, "denied inline");
        return 200;
    }
    if (strcmp(action.data, "contain") == 0) {
        oc2_reply_set_text(reply, "no such host");
        return 0;
    }
    if (strcmp(action.data, "allow") == 0) return 999;
    if (strcmp(action.data, "stop") == 0) {
        /* Closing waits for this very thread: refused, and the command is still answered. */
        if (oc2_consumer_close(state->consumer) == OC2_RESULT_INVALID_ARGUMENT)
            atomic_fetch_add(&state->close_refused, 1);
        return 200;
    }
    return 0;
}

static void inline_style_answers_on_the_network_thread(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer_options *o = NULL;
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    inline_state state = {0};
    state.caller = pthread_self();
    CHECK_RC(oc2_consumer_options_new("fw-h", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect_with(c, o, &consumer), OC2_RESULT_OK);
    oc2_consumer_options_free(o);
    state.consumer = consumer;
    CHECK_RC(oc2_producer_connect(c, "p-i", &producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve_inline(consumer, NULL, &state), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_serve_inline(consumer, handle_inline, &state), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve_inline(consumer, handle_inline, &state), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_serve_handler(consumer, handle, NULL), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_serve(consumer, answer, NULL), OC2_RESULT_INVALID_ARGUMENT);
    char err[64];
    size_t written = 0;
    CHECK_RC(oc2_consumer_last_error(consumer, err, sizeof err, &written), OC2_RESULT_OK);
    CHECK(strcmp(err, "this consumer already serves") == 0);

    uint16_t status = 0;
    char *text = final_answer(producer, "deny", &status);
    CHECK(status == 200 && strcmp(text, "denied inline") == 0);
    free(text);
    text = final_answer(producer, "contain", &status);
    CHECK(status == 500 && strcmp(text, "no such host") == 0);
    free(text);
    text = final_answer(producer, "allow", &status);
    CHECK(status == 500 && strcmp(text, "the handler returned an invalid status: 999; " STATUS_CODES) == 0);
    free(text);
    text = final_answer(producer, "scan", &status);
    CHECK(status == 500 && strcmp(text, "the handler failed") == 0);
    free(text);
    text = final_answer(producer, "stop", &status);
    CHECK(status == 200);
    free(text);
    CHECK(atomic_load(&state.close_refused) == 1);
    text = final_answer(producer, "deny", &status);
    CHECK(status == 200); /* still serving */
    free(text);
    CHECK(atomic_load(&state.calls) == 6);
    CHECK(atomic_load(&state.on_caller) == 0);
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

/* Freed from another thread while commands keep arriving: free returns once
 * no handler runs and none runs after it (ASan and valgrind see the rest). */
typedef struct {
    oc2_producer *producer;
    atomic_int stop;
    int sent;
} flood;

static void *send_until_stopped(void *arg) {
    flood *f = arg;
    const char *to[] = {"fw-h"};
    while (!atomic_load(&f->stop)) {
        oc2_exchange *x = NULL;
        if (oc2_producer_send(f->producer, DENY, strlen(DENY), to, 1, 200, &x) == OC2_RESULT_OK) {
            f->sent++;
            oc2_exchange_free(x);
        }
        struct timespec t = {0, 200000};
        nanosleep(&t, NULL);
    }
    return NULL;
}

static void inline_consumer_freed_from_another_thread_while_serving(void) {
    oc2_config *c = make_config(broker);
    oc2_consumer *consumer = device(c, "fw-h");
    inline_state state = {0};
    state.caller = pthread_self();
    state.consumer = consumer;
    flood f = {0};
    CHECK_RC(oc2_producer_connect(c, "p-f", &f.producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_serve_inline(consumer, handle_inline, &state), OC2_RESULT_OK);
    pthread_t sender;
    CHECK(pthread_create(&sender, NULL, send_until_stopped, &f) == 0);
    for (int i = 0; i < 500 && atomic_load(&state.calls) < 20; i++) {
        struct timespec t = {0, 10000000};
        nanosleep(&t, NULL);
    }
    CHECK(atomic_load(&state.calls) >= 20);
    oc2_consumer_free(consumer); /* while commands arrive */
    int after_free = atomic_load(&state.calls);
    struct timespec t = {0, 100000000};
    nanosleep(&t, NULL);
    CHECK(atomic_load(&state.calls) == after_free);
    atomic_store(&f.stop, 1);
    pthread_join(sender, NULL);
    CHECK(f.sent > after_free - 1);
    oc2_producer_free(f.producer);
    oc2_config_free(c);
}

static void builder_options_take_effect(void) {
    oc2_config_builder *cb = NULL;
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_new(broker, &cb), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_message_expiry(cb, 60), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(cb, &c), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_max_payload(cb, 200), OC2_RESULT_OK);
    oc2_config *small = NULL;
    CHECK_RC(oc2_config_builder_build(cb, &small), OC2_RESULT_OK);
    oc2_config_builder_free(cb);

    oc2_consumer_options *o = NULL;
    oc2_consumer *members[2] = {NULL, NULL};
    CHECK_RC(oc2_consumer_options_new("fw-group", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_group(o, "c-group"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_rate_limit(o, 30.0), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect_with(c, o, &members[0]), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect_with(c, o, &members[1]), OC2_RESULT_OK);
    oc2_consumer_options_free(o);
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "p-opts", &producer), OC2_RESULT_OK);

    const char *to[] = {"fw-group"};
    oc2_exchange *x[10] = {NULL};
    for (int i = 0; i < 10; i++)
        CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &x[i]), OC2_RESULT_OK);
    int got[2] = {0, 0};
    for (int quiet = 0; quiet < 2;) {
        quiet = 0;
        for (int m = 0; m < 2; m++) {
            oc2_command *cmd = NULL;
            if (oc2_consumer_next(members[m], 300, &cmd) != OC2_RESULT_OK) {
                quiet++;
                continue;
            }
            got[m]++;
            CHECK_RC(oc2_consumer_reply_status(members[m], cmd, 200, NULL), OC2_RESULT_OK);
            oc2_command_free(cmd);
        }
    }
    CHECK(got[0] + got[1] == 10); /* not 20: one member each */
    if (got[0] + got[1] != 10) fprintf(stderr, "  members got %d and %d\n", got[0], got[1]);
    for (int i = 0; i < 10; i++) {
        bool complete = false;
        CHECK_RC(oc2_exchange_wait(x[i]), OC2_RESULT_OK);
        CHECK_RC(oc2_exchange_is_complete(x[i], &complete), OC2_RESULT_OK);
        CHECK(complete);
        oc2_exchange_free(x[i]);
    }
    const char *rate = "{\"action\":\"query\",\"target\":{\"features\":[\"rate_limit\"]}}";
    oc2_exchange *q = NULL;
    oc2_message *r = NULL;
    oc2_str s;
    CHECK_RC(oc2_producer_send(producer, rate, strlen(rate), to, 1, 5000, &q), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(q, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_content_json(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "{\"results\":{\"rate_limit\":30.0},\"status\":200}");
    oc2_message_free(r);
    oc2_exchange_free(q);

    /* A consumer that takes 200 bytes at most refuses a larger command unparsed. */
    oc2_consumer *tiny = NULL;
    CHECK_RC(oc2_consumer_connect(small, "fw-tiny", NULL, 0, NULL, 0, &tiny), OC2_RESULT_OK);
    char big[512];
    int len = snprintf(big, sizeof big, "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},\"args\":{\"x-pad\":\"%0300d\"}}", 0);
    const char *tiny_to[] = {"fw-tiny"};
    CHECK_RC(oc2_producer_send(producer, big, (size_t)len, tiny_to, 1, 2000, &q), OC2_RESULT_OK);
    oc2_command *none = NULL;
    CHECK_RC(oc2_consumer_next(tiny, 1000, &none), OC2_RESULT_TIMEOUT);
    oc2_stats st;
    CHECK_RC(oc2_consumer_stats(tiny, &st), OC2_RESULT_OK);
    CHECK(st.decode_errors == 1);
    oc2_exchange_free(q);

    oc2_consumer_free(tiny);
    oc2_producer_free(producer);
    oc2_consumer_free(members[0]);
    oc2_consumer_free(members[1]);
    oc2_config_free(small);
    oc2_config_free(c);
}

/* Runs `oc2mqtt send` in the background and returns its stdout. */
static FILE *cli_send(const char *to, const char *command) {
    const char *cli = getenv("OC2_TEST_CLI");
    char line[1024];
    snprintf(line, sizeof line, "'%s' send --broker '%s' --from cli-producer --to %s --timeout 5 '%s'", cli, broker,
             to, command);
    return popen(line, "r");
}

static void rust_cli_is_answered_by_c_consumers(void) {
    const char *cli = getenv("OC2_TEST_CLI");
    CHECK(cli != NULL && cli[0] != 0);
    if (!cli || !cli[0]) return;
    oc2_config *c = make_config(broker);

    /* Pull style. */
    oc2_consumer *pull = device(c, "fw-cli-pull");
    FILE *out = cli_send("fw-cli-pull", DENY);
    CHECK(out != NULL);
    oc2_command *cmd = NULL;
    CHECK_RC(oc2_consumer_next(pull, 10000, &cmd), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_reply_status(pull, cmd, 200, "denied by C"), OC2_RESULT_OK);
    oc2_command_free(cmd);
    char line[4096] = "";
    CHECK(out && fgets(line, sizeof line, out) != NULL);
    CHECK(strstr(line, "\"status_text\":\"denied by C\"") != NULL && strstr(line, "\"from\":\"fw-cli-pull\"") != NULL);
    if (!strstr(line, "denied by C")) fprintf(stderr, "  cli printed: %s\n", line);
    CHECK(out && pclose(out) == 0);
    oc2_consumer_free(pull);

    /* Callback style. */
    served state = {0};
    oc2_consumer *cb = device(c, "fw-cli-cb");
    CHECK_RC(oc2_consumer_serve(cb, answer, &state), OC2_RESULT_OK);
    out = cli_send("fw-cli-cb", DENY);
    line[0] = 0;
    CHECK(out && fgets(line, sizeof line, out) != NULL);
    CHECK(strstr(line, "\"status_text\":\"did deny\"") != NULL);
    CHECK(out && pclose(out) == 0);
    CHECK_RC(oc2_consumer_close(cb), OC2_RESULT_OK);
    CHECK(atomic_load(&state.calls) == 1);
    oc2_consumer_free(cb);
    oc2_config_free(c);
}

static void monitor_pairs_requests_and_responses(void) {
    oc2_config *c = make_config(broker);
    oc2_monitor *mon = NULL;
    CHECK_RC(oc2_monitor_connect(c, NULL, &mon), OC2_RESULT_OK);
    oc2_consumer *consumer = device(c, "fw-mon");
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "p-mon", &producer), OC2_RESULT_OK);
    const char *features = "{\"action\":\"query\",\"target\":{\"features\":[]}}";
    const char *to[] = {"fw-mon"};
    oc2_exchange *x = NULL;
    CHECK_RC(oc2_producer_send(producer, features, strlen(features), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_wait(x), OC2_RESULT_OK);
    oc2_exchange_free(x);

    int requests = 0, paired = 0;
    oc2_monitor_event *ev = NULL;
    while (oc2_monitor_next(mon, 1000, &ev) == OC2_RESULT_OK) {
        oc2_event_kind kind = 0;
        const oc2_message *m = NULL;
        uint64_t latency = 0;
        CHECK_RC(oc2_monitor_event_kind(ev, &kind), OC2_RESULT_OK);
        CHECK_RC(oc2_monitor_event_message(ev, &m), OC2_RESULT_OK);
        if (kind == OC2_EVENT_REQUEST) requests++;
        if (kind == OC2_EVENT_RESPONSE && oc2_message_latency_us(m, &latency) == OC2_RESULT_OK) paired++;
        oc2_str reason;
        oc2_bytes payload;
        CHECK_RC(oc2_monitor_event_undecodable(ev, &reason, &payload), OC2_RESULT_ABSENT);
        oc2_monitor_event_free(ev);
        ev = NULL;
    }
    CHECK(requests == 1 && paired >= 1);

    CHECK_RC(oc2_monitor_next(mon, 0, &ev), OC2_RESULT_TIMEOUT);

    /* Garbage on an OpenC2 topic is shown with the reason, not dropped. */
    char pub[256];
    snprintf(pub, sizeof pub, "mosquitto_pub -h 127.0.0.1 -p %s -t oc2/rsp -m 'not json{'", strrchr(broker, ':') + 1);
    CHECK(system(pub) == 0);
    CHECK_RC(oc2_monitor_next(mon, 5000, &ev), OC2_RESULT_OK);
    oc2_event_kind kind = 0;
    oc2_str reason, topic;
    oc2_bytes payload = {NULL, 0};
    const oc2_message *none = NULL;
    CHECK_RC(oc2_monitor_event_kind(ev, &kind), OC2_RESULT_OK);
    CHECK(kind == OC2_EVENT_UNDECODABLE);
    CHECK_RC(oc2_monitor_event_undecodable(ev, &reason, &payload), OC2_RESULT_OK);
    CHECK(strncmp(reason.data, "malformed JSON: ", 16) == 0);
    CHECK(payload.len == 9 && memcmp(payload.data, "not json{", 9) == 0);
    CHECK_RC(oc2_monitor_event_topic(ev, &topic), OC2_RESULT_OK);
    CHECK_STR(topic, "oc2/rsp");
    CHECK_RC(oc2_monitor_event_message(ev, &none), OC2_RESULT_ABSENT);
    oc2_monitor_event_free(ev);
    oc2_stats st;
    CHECK_RC(oc2_monitor_stats(mon, &st), OC2_RESULT_OK);
    CHECK(st.received >= 2);
    oc2_monitor_free(mon);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

int main(void) {
    broker = getenv("OC2_TEST_BROKER");
    if (!broker) {
        fprintf(stderr, "OC2_TEST_BROKER is not set (make -C bindings-c test starts a broker)\n");
        return 2;
    }
    RUN(config_errors_name_the_setting);
    RUN(unreachable_broker_is_a_connect_error);
    RUN(pull_style_round_trip);
    RUN(cancel_from_another_thread_ends_a_wait_at_once);
    RUN(stale_command_is_not_executed);
    RUN(callback_style_round_trip);
    RUN(callback_style_keeps_the_handler_timeout);
    RUN(handler_style_answers_the_status_it_returns);
    RUN(inline_style_answers_on_the_network_thread);
    RUN(inline_consumer_freed_from_another_thread_while_serving);
    RUN(builder_options_take_effect);
    RUN(rust_cli_is_answered_by_c_consumers);
    RUN(monitor_pairs_requests_and_responses);
    return TEST_SUMMARY("roundtrip");
}
