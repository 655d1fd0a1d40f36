/* The options that came with the consumer rules, against a real Mosquitto:
 * peer and response topics in the configuration, consumer arguments, a
 * producer's unsolicited responses; and the sans-IO rules' own API.
 *
 * Environment: OC2_TEST_BROKER (mqtt://127.0.0.1:PORT of a broker started
 * by tests/broker/broker.py). mosquitto_pub and mosquitto_sub (Mosquitto's
 * clients) stand for raw peers. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <time.h>

#include "testing.h"

static const char *broker;
static const char *port;

#define DENY "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"}}"

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static oc2_config *make_config(oc2_peer peer, oc2_response_topics response_topics) {
    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_new(broker, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_connect_timeout(b, 5), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_peer(b, peer), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_response_topics(b, response_topics), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_builder_free(b);
    return c;
}

static void config_takes_a_peer_and_response_topics(void) {
    oc2_config_builder *b = NULL;
    CHECK_RC(oc2_config_builder_new(broker, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_peer(b, 4), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_config_builder_set_response_topics(b, 4), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_config_builder_set_peer(b, OC2_PEER_OIF), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_response_topics(b, OC2_RESPONSE_TOPICS_PRODUCER), OC2_RESULT_OK);
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_free(c);
    oc2_config_builder_free(b);
    CHECK_RC(oc2_config_builder_set_peer(NULL, OC2_PEER_SPEC), OC2_RESULT_NULL_PARAMETER);
}

/* A consumer configured with OC2_RESPONSE_TOPICS_BOTH answers on oc2/rsp and
 * oc2/rsp/<producer>, as a raw subscriber sees. */
static void response_topics_both_publishes_on_both(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mosquitto_sub -h 127.0.0.1 -p %s -q 1 -v -C 2 -W 10 -t oc2/rsp -t 'oc2/rsp/+'", port);
    FILE *sub = popen(cmd, "r");
    CHECK(sub != NULL);
    if (sub == NULL) return;
    sleep_ms(500); /* mosquitto_sub says nothing once subscribed: give it time */

    oc2_config *both = make_config(OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_BOTH);
    oc2_config *plain = make_config(OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_PEER);
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_consumer_connect(both, "rtb-fw", NULL, 0, NULL, 0, &consumer), OC2_RESULT_OK);
    CHECK_RC(oc2_producer_connect(plain, "rtb-p", &producer), OC2_RESULT_OK);
    const char *to[] = {"rtb-fw"};
    oc2_exchange *x = NULL;
    CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &x), OC2_RESULT_OK);
    oc2_command *command = NULL;
    CHECK_RC(oc2_consumer_next(consumer, 5000, &command), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_reply(consumer, command, "{\"status\":200}", 14), OC2_RESULT_OK);
    oc2_command_free(command);
    CHECK_RC(oc2_exchange_wait(x), OC2_RESULT_OK);
    bool complete = false;
    CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
    CHECK(complete);
    oc2_exchange_free(x);

    char line[512];
    int on_shared = 0, on_producer = 0;
    while (fgets(line, sizeof line, sub) != NULL) {
        if (strncmp(line, "oc2/rsp ", 8) == 0) on_shared++;
        if (strncmp(line, "oc2/rsp/rtb-p ", 14) == 0) on_producer++;
    }
    pclose(sub);
    CHECK(on_shared == 1 && on_producer == 1);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(both);
    oc2_config_free(plain);
}

/* Declared arguments reach the application; others get 501 from the core. */
static void consumer_arguments(void) {
    oc2_config *c = make_config(OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_PEER);
    oc2_consumer_options *o = NULL;
    CHECK_RC(oc2_consumer_options_new("args-fw", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_add_pair(o, "deny", "ipv4_net"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_add_arg(o, "x-acme"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_add_arg(NULL, "x-acme"), OC2_RESULT_NULL_PARAMETER);
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_consumer_connect_with(c, o, &consumer), OC2_RESULT_OK);
    CHECK_RC(oc2_producer_connect(c, "args-p", &producer), OC2_RESULT_OK);
    const char *to[] = {"args-fw"};

    const char *taken = "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},\"args\":{\"x-acme\":{\"mode\":1}}}";
    oc2_exchange *x = NULL;
    CHECK_RC(oc2_producer_send(producer, taken, strlen(taken), to, 1, 5000, &x), OC2_RESULT_OK);
    oc2_command *command = NULL;
    CHECK_RC(oc2_consumer_next(consumer, 5000, &command), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_reply(consumer, command, "{\"status\":200}", 14), OC2_RESULT_OK);
    oc2_command_free(command);
    oc2_message *r = NULL;
    uint16_t status = 0;
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    oc2_message_free(r);
    oc2_exchange_free(x);

    const char *refused = "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"},\"args\":{\"x-other\":1}}";
    CHECK_RC(oc2_producer_send(producer, refused, strlen(refused), to, 1, 5000, &x), OC2_RESULT_OK);
    CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 501);
    oc2_str text;
    CHECK_RC(oc2_message_status_text(r, &text), OC2_RESULT_OK);
    CHECK(strstr(text.data, "x-other") != NULL);
    oc2_message_free(r);
    oc2_exchange_free(x);
    CHECK_RC(oc2_consumer_next(consumer, 200, &command), OC2_RESULT_TIMEOUT);

    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_consumer_options_free(o);
    oc2_config_free(c);
}

/* A raw peer's bare {"status":200} on oc2/rsp matches no exchange. */
static void unsolicited_responses(void) {
    oc2_config *c = make_config(OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_PEER);
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_producer_connect(c, "un-p", &producer), OC2_RESULT_OK);
    oc2_message *r = NULL;
    CHECK_RC(oc2_producer_next_unsolicited(producer, 0, &r), OC2_RESULT_TIMEOUT);
    CHECK(r == NULL);
    CHECK_RC(oc2_producer_next_unsolicited(producer, 0, NULL), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_producer_next_unsolicited(NULL, 0, &r), OC2_RESULT_NULL_PARAMETER);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "mosquitto_pub -h 127.0.0.1 -p %s -q 1 -t oc2/rsp -m '{\"status\":200}'", port);
    CHECK(system(cmd) == 0);
    CHECK_RC(oc2_producer_next_unsolicited(producer, 5000, &r), OC2_RESULT_OK);
    uint16_t status = 0;
    oc2_str s;
    oc2_dialect dialect = 0;
    CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
    CHECK(status == 200);
    CHECK_RC(oc2_message_topic(r, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/rsp");
    CHECK_RC(oc2_message_dialect(r, &dialect), OC2_RESULT_OK);
    CHECK(dialect == OC2_DIALECT_BARE);
    CHECK_RC(oc2_message_request_id(r, &s), OC2_RESULT_ABSENT);
    oc2_message_free(r);
    oc2_stats stats;
    CHECK_RC(oc2_producer_stats(producer, &stats), OC2_RESULT_OK);
    CHECK(stats.unsolicited >= 1);
    oc2_producer_free(producer);
    oc2_config_free(c);
}

/* The sans-IO rules: a decision, its request, the answer; errors. */
static void rules_without_a_broker(void) {
    oc2_consumer_options *o = NULL;
    oc2_consumer_rules *rules = NULL;
    char text[256];
    size_t n;
    CHECK_RC(oc2_consumer_options_new("fw-1", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_check(o, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(n == 0 && text[0] == 0);
    CHECK_RC(oc2_consumer_rules_new(o, 7, OC2_RESPONSE_TOPICS_PEER, &rules), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_rules_new(o, OC2_PEER_SPEC, 7, &rules), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_options_add_pair(o, "explode", "x"), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_rules_new(o, OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_PEER, &rules), OC2_RESULT_CONFIG);
    CHECK(rules == NULL);
    CHECK_RC(oc2_consumer_options_check(o, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "configuration: pair explode:x: unknown action 'explode'") == 0);
    oc2_consumer_options_free(o);

    CHECK_RC(oc2_consumer_options_new("fw-1", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_rules_new(o, OC2_PEER_SPEC, OC2_RESPONSE_TOPICS_BOTH, &rules), OC2_RESULT_OK);
    oc2_consumer_options_free(o); /* the rules keep their own copy */
    const char *cmd = "{\"headers\":{\"request_id\":\"r1\",\"from\":\"p1\"},\"body\":{\"openc2\":{\"request\":" DENY "}}}";
    oc2_decision *d = NULL;
    CHECK_RC(oc2_consumer_rules_on_command(rules, "oc2/cmd/all", (const uint8_t *)cmd, strlen(cmd), NULL, false, 0, 0, &d),
             OC2_RESULT_OK);
    oc2_str s;
    size_t count = 9;
    CHECK_RC(oc2_decision_skipped(d, &s), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_decision_reason(d, &s), OC2_RESULT_ABSENT);
    CHECK_RC(oc2_decision_publish_count(d, &count), OC2_RESULT_OK);
    CHECK(count == 0);
    const oc2_publish *lent = NULL;
    CHECK_RC(oc2_decision_publish(d, 0, &lent), OC2_RESULT_OUT_OF_RANGE);
    const oc2_request *req = NULL;
    const oc2_message *m = NULL;
    CHECK_RC(oc2_decision_request(d, &req), OC2_RESULT_OK);
    CHECK_RC(oc2_request_message(req, &m), OC2_RESULT_OK);
    CHECK_RC(oc2_message_action(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "deny");
    CHECK_RC(oc2_message_topic(m, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/cmd/all");

    oc2_publish *out = NULL;
    CHECK_RC(oc2_consumer_rules_answer(rules, req, "{\"status\":1234}", 15, &out), OC2_RESULT_MESSAGE_VALUE);
    CHECK_RC(oc2_consumer_rules_last_error(rules, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strstr(text, "status") != NULL);
    CHECK_RC(oc2_consumer_rules_answer(rules, req, "{nope", 5, &out), OC2_RESULT_MESSAGE_SYNTAX);
    CHECK(out == NULL);
    CHECK_RC(oc2_consumer_rules_answer(rules, req, "{\"status\":200}", 14, &out), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_rules_last_error(rules, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(n == 0);
    const oc2_strings *topics = NULL;
    size_t len = 0;
    CHECK_RC(oc2_publish_topics(out, &topics), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(topics, &len), OC2_RESULT_OK);
    CHECK(len == 2);
    CHECK_RC(oc2_strings_get(topics, 1, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/rsp/p1");
    oc2_bytes payload;
    const oc2_properties *props = NULL;
    CHECK_RC(oc2_publish_payload(out, &payload), OC2_RESULT_OK);
    CHECK_RC(oc2_publish_properties(out, &props), OC2_RESULT_OK);
    char copy[512] = "";
    if (payload.len < sizeof copy) memcpy(copy, payload.data, payload.len);
    CHECK(payload.len > 0 && strstr(copy, "\"status\":200") != NULL);
    oc2_publish_free(out);
    oc2_decision_free(d);

    /* Again: a duplicate, with a name and no request. */
    CHECK_RC(oc2_consumer_rules_on_command(rules, "oc2/cmd/device/fw-1", (const uint8_t *)cmd, strlen(cmd), NULL, false, 0,
                                           10, &d),
             OC2_RESULT_OK);
    CHECK_RC(oc2_decision_skipped(d, &s), OC2_RESULT_OK);
    CHECK_STR(s, "duplicate");
    CHECK_RC(oc2_decision_request(d, &req), OC2_RESULT_ABSENT);
    oc2_decision_free(d);
    /* Undecodable, with the reason. */
    CHECK_RC(oc2_consumer_rules_on_command(rules, "oc2/cmd/all", (const uint8_t *)"{x", 2, NULL, false, 0, 20, &d),
             OC2_RESULT_OK);
    CHECK_RC(oc2_decision_skipped(d, &s), OC2_RESULT_OK);
    CHECK_STR(s, "undecodable");
    CHECK_RC(oc2_decision_reason(d, &s), OC2_RESULT_OK);
    CHECK(strstr(s.data, "JSON") != NULL);
    oc2_decision_free(d);
    d = NULL;
    CHECK_RC(oc2_consumer_rules_on_command(rules, NULL, NULL, 0, NULL, false, 0, 0, &d), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_rules_on_command(rules, "oc2/cmd/all", NULL, 1, NULL, false, 0, 0, &d),
             OC2_RESULT_NULL_PARAMETER);
    CHECK(d == NULL);
    oc2_consumer_rules_free(rules);
    oc2_consumer_rules_free(NULL);
    oc2_decision_free(NULL);
    oc2_publish_free(NULL);
}

/* oc2_topics follows the peer and the response topics too. */
static void topics_follow_the_peer(void) {
    oc2_topics *t = NULL;
    oc2_codec *codec = NULL;
    oc2_message *rsp = NULL;
    oc2_strings *list = NULL;
    size_t len = 0;
    const char *json = "{\"headers\":{\"to\":[\"p1\"]},\"body\":{\"openc2\":{\"response\":{\"status\":200}}}}";
    CHECK_RC(oc2_topics_new(&t), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_new(&codec), OC2_RESULT_OK);
    CHECK_RC(oc2_codec_message_from_json(codec, json, strlen(json), &rsp), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_set_peer(t, 9), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_topics_set_response_topics(t, 9), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_topics_response_topics(t, rsp, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &len), OC2_RESULT_OK);
    CHECK(len == 1);
    oc2_strings_free(list);
    CHECK_RC(oc2_topics_set_peer(t, OC2_PEER_OIF), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_response_topics(t, rsp, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &len), OC2_RESULT_OK);
    CHECK(len == 2);
    oc2_strings_free(list);
    CHECK_RC(oc2_topics_set_response_topics(t, OC2_RESPONSE_TOPICS_PRODUCER), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_response_topics(t, rsp, &list), OC2_RESULT_OK);
    oc2_str s;
    CHECK_RC(oc2_strings_get(list, 0, &s), OC2_RESULT_OK);
    CHECK_STR(s, "oc2/rsp/p1");
    CHECK_RC(oc2_strings_len(list, &len), OC2_RESULT_OK);
    CHECK(len == 1);
    oc2_strings_free(list);
    /* Back to the peer's choice: OIF's two topics. */
    CHECK_RC(oc2_topics_set_response_topics(t, OC2_RESPONSE_TOPICS_PEER), OC2_RESULT_OK);
    CHECK_RC(oc2_topics_response_topics(t, rsp, &list), OC2_RESULT_OK);
    CHECK_RC(oc2_strings_len(list, &len), OC2_RESULT_OK);
    CHECK(len == 2);
    oc2_strings_free(list);
    oc2_message_free(rsp);
    oc2_codec_free(codec);
    oc2_topics_free(t);
}

int main(void) {
    broker = getenv("OC2_TEST_BROKER");
    if (broker == NULL) {
        fprintf(stderr, "OC2_TEST_BROKER is not set: run through tests/with_broker.sh\n");
        return 2;
    }
    port = strrchr(broker, ':') + 1;
    RUN(rules_without_a_broker);
    RUN(topics_follow_the_peer);
    RUN(config_takes_a_peer_and_response_topics);
    RUN(consumer_arguments);
    RUN(unsolicited_responses);
    RUN(response_topics_both_publishes_on_both);
    return TEST_SUMMARY("options");
}
