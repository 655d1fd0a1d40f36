/* Smoke test on RabbitMQ 3.10 and ActiveMQ 5.17 (MQTT 3.1.1 only) with the
 * library's default settings but for the broker URL and the credentials:
 * the default `auto` MQTT version falls back to 3.1.1, a producer <->
 * consumer exchange completes, and a wrong password is refused by name.
 *
 * Environment (tests/with_rabbitmq_activemq.sh sets it):
 * OC2_TEST_RABBITMQ, OC2_TEST_ACTIVEMQ (mqtt://127.0.0.1:PORT),
 * OC2_TEST_USER, OC2_TEST_PASSWORD. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "testing.h"

#define DENY "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.0.0/8\"}}"

static const char *user, *password;

/* Default settings except the broker URL and the credentials. */
static oc2_config *login(const char *url, const char *pw) {
    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_new(url, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_credentials(b, user, pw), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_builder_free(b);
    return c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void answer(void *userdata, const oc2_consumer *consumer, oc2_command *cmd) {
    atomic_int *calls = userdata;
    const char *ok = "{\"status\":200,\"status_text\":\"denied\"}";
    if (oc2_consumer_reply(consumer, cmd, ok, strlen(ok)) == OC2_RESULT_OK) atomic_fetch_add(calls, 1);
    oc2_command_free(cmd);
}

static void smoke(const char *kind, const char *url) {
    printf("-- %s (%s)\n", kind, url);
    char text[512];
    size_t n = 0;
    oc2_config *c = login(url, password);

    /* 1. A consumer for fw-1 answering a deny from a producer. */
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    atomic_int calls = 0;
    CHECK_RC(oc2_consumer_connect(c, "fw-1", NULL, 0, NULL, 0, &consumer), OC2_RESULT_OK);
    if (!consumer) {
        oc2_config_last_error(c, text, sizeof text, &n);
        fprintf(stderr, "  %s: consumer: %s\n", kind, text);
        oc2_config_free(c);
        return;
    }
    CHECK_RC(oc2_consumer_serve(consumer, answer, &calls), OC2_RESULT_OK);
    CHECK_RC(oc2_producer_connect(c, "ctl-1", &producer), OC2_RESULT_OK);
    if (producer) {
        const char *to[] = {"fw-1"};
        oc2_exchange *x = NULL;
        oc2_message *r = NULL;
        uint16_t status = 0;
        bool complete = false;
        oc2_str s;
        double t0 = now_s();
        CHECK_RC(oc2_producer_send(producer, DENY, strlen(DENY), to, 1, 5000, &x), OC2_RESULT_OK);
        CHECK_RC(oc2_exchange_next(x, 5000, &r), OC2_RESULT_OK);
        CHECK_RC(oc2_exchange_wait(x), OC2_RESULT_OK);
        double took = now_s() - t0;
        CHECK(took < 4.0);
        if (took >= 4.0) fprintf(stderr, "  %s: the exchange took %.2f s\n", kind, took);
        CHECK_RC(oc2_exchange_is_complete(x, &complete), OC2_RESULT_OK);
        CHECK(complete);
        if (r) {
            CHECK_RC(oc2_message_status(r, &status), OC2_RESULT_OK);
            CHECK(status == 200);
            CHECK_RC(oc2_message_from(r, &s), OC2_RESULT_OK);
            CHECK_STR(s, "fw-1");
            CHECK_RC(oc2_message_status_text(r, &s), OC2_RESULT_OK);
            CHECK_STR(s, "denied");
        }
        oc2_message_free(r);
        oc2_exchange_free(x);

        /* 2. No MQTT v5 on these brokers: the default `auto` spoke 3.1.1. */
        oc2_stats st;
        CHECK_RC(oc2_producer_stats(producer, &st), OC2_RESULT_OK);
        CHECK(st.mqtt_version == OC2_MQTT_V311);
        CHECK(st.published >= 1 && st.received >= 1 && st.reconnects == 0);
        CHECK_RC(oc2_consumer_stats(consumer, &st), OC2_RESULT_OK);
        CHECK(st.mqtt_version == OC2_MQTT_V311);
        if (st.mqtt_version != OC2_MQTT_V311) fprintf(stderr, "  %s: mqtt_version %u\n", kind, st.mqtt_version);
        CHECK_RC(oc2_producer_broker(producer, text, sizeof text, &n), OC2_RESULT_OK);
        CHECK(strcmp(text, url) == 0);
    } else {
        oc2_config_last_error(c, text, sizeof text, &n);
        fprintf(stderr, "  %s: producer: %s\n", kind, text);
    }
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK); /* joins the callback thread */
    CHECK(atomic_load(&calls) == 1);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(c);

    /* 3. A wrong password: OC2_RESULT_AUTH, and the reason in words. */
    oc2_config *bad = login(url, "wrong");
    oc2_producer *refused = NULL;
    double t0 = now_s();
    CHECK_RC(oc2_producer_connect(bad, "ctl-bad", &refused), OC2_RESULT_AUTH);
    CHECK(refused == NULL);
    CHECK(now_s() - t0 < 5.0);
    CHECK_RC(oc2_config_last_error(bad, text, sizeof text, &n), OC2_RESULT_OK);
    CHECK(strcmp(text, "broker refused the connection: bad user name or password") == 0);
    if (strcmp(text, "broker refused the connection: bad user name or password") != 0)
        fprintf(stderr, "  %s: wrong password: %s\n", kind, text);
    oc2_producer_free(refused);
    oc2_config_free(bad);
}

int main(void) {
    const char *rabbitmq = getenv("OC2_TEST_RABBITMQ");
    const char *activemq = getenv("OC2_TEST_ACTIVEMQ");
    user = getenv("OC2_TEST_USER");
    password = getenv("OC2_TEST_PASSWORD");
    if (!rabbitmq || !activemq || !user || !password) {
        fprintf(stderr, "OC2_TEST_RABBITMQ, OC2_TEST_ACTIVEMQ, OC2_TEST_USER and OC2_TEST_PASSWORD must be set "
                        "(tests/with_rabbitmq_activemq.sh sets them)\n");
        return 2;
    }
    int before = test_failures;
    smoke("rabbitmq", rabbitmq);
    printf("%s rabbitmq\n", test_failures == before ? "ok  " : "FAIL");
    before = test_failures;
    smoke("activemq", activemq);
    printf("%s activemq\n", test_failures == before ? "ok  " : "FAIL");
    return TEST_SUMMARY("brokers");
}
