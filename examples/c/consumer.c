/* A device: answers `query features` and `deny ipv4_net` commands.
 *
 *   ./consumer mqtt://127.0.0.1:1883 fw-1 [FRESHNESS_SECONDS]
 *
 * It declares what it implements (profile slpf, the pair deny:ipv4_net);
 * the library then answers `query features` by itself, replies 501 to any
 * other action/target, drops duplicates, ignores commands addressed to
 * other devices, and never runs a retained command nor one older than the
 * freshness window (the library's default unless given; 0: off). What
 * reaches this loop is a deny to carry out. Stop it with Ctrl-C. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oc2mqtt.h>

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

/* Prints what went wrong: the code's text, and the detail if there is one. */
static int fail(const char *what, oc2_result rc, const char *detail) {
    char text[128];
    size_t n;
    oc2_result_text(rc, text, sizeof text, &n);
    fprintf(stderr, "%s: %s%s%s\n", what, text, detail && *detail ? ": " : "", detail ? detail : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s BROKER_URL DEVICE_ID [FRESHNESS_SECONDS]\n", argv[0]);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Settings: the broker and how long connecting may take. */
    oc2_config_builder *builder = NULL;
    oc2_config *config = NULL;
    char detail[512] = "";
    size_t n;
    oc2_result rc = oc2_config_builder_new(argv[1], &builder);
    if (rc == OC2_RESULT_OK) oc2_config_builder_set_connect_timeout(builder, 5);
    if (rc == OC2_RESULT_OK) rc = oc2_config_builder_build(builder, &config);
    if (rc != OC2_RESULT_OK) {
        if (builder) oc2_config_builder_last_error(builder, detail, sizeof detail, &n);
        oc2_config_builder_free(builder);
        return fail("configuration", rc, detail);
    }
    oc2_config_builder_free(builder);

    /* Connect as the device, with what it implements. */
    oc2_consumer_options *options = NULL;
    oc2_consumer *consumer = NULL;
    rc = oc2_consumer_options_new(argv[2], &options);
    if (rc == OC2_RESULT_OK) rc = oc2_consumer_options_add_profile(options, "slpf");
    if (rc == OC2_RESULT_OK) rc = oc2_consumer_options_add_pair(options, "deny", "ipv4_net");
    if (rc == OC2_RESULT_OK && argc == 4)
        rc = oc2_consumer_options_set_freshness(options, strtoull(argv[3], NULL, 10));
    if (rc == OC2_RESULT_OK) rc = oc2_consumer_connect_with(config, options, &consumer);
    oc2_consumer_options_free(options);
    if (rc != OC2_RESULT_OK) {
        oc2_config_last_error(config, detail, sizeof detail, &n);
        oc2_config_free(config);
        return fail("connect", rc, detail);
    }
    char url[256] = "?";
    oc2_stats stats;
    oc2_consumer_broker(consumer, url, sizeof url, &n);
    oc2_consumer_stats(consumer, &stats);
    printf("%s: waiting for commands on %s (MQTT %s)\n", argv[2], url,
           stats.mqtt_version == OC2_MQTT_V311 ? "3.1.1" : "5");
    fflush(stdout);

    /* The device loop: wait up to one second at a time, so Ctrl-C is seen. */
    while (!stopping) {
        oc2_command *command = NULL;
        rc = oc2_consumer_next(consumer, 1000, &command);
        if (rc == OC2_RESULT_TIMEOUT) continue;
        if (rc != OC2_RESULT_OK) break; /* OC2_RESULT_DONE: closed */

        const oc2_message *m = NULL;
        oc2_str action, target, from = {"?", 1};
        oc2_command_message(command, &m);
        oc2_message_action(m, &action);
        oc2_message_target_json(m, &target);
        oc2_message_from(m, &from);
        printf("%s from %s: %s %s\n", argv[2], from.data, action.data, target.data);
        fflush(stdout);

        /* Here a real device would install the rule. */
        rc = oc2_consumer_reply_status(consumer, command, 200, "rule installed");
        if (rc != OC2_RESULT_OK) {
            oc2_consumer_last_error(consumer, detail, sizeof detail, &n);
            fail("reply", rc, detail);
        }
        oc2_command_free(command);
    }

    oc2_consumer_stats(consumer, &stats);
    if (stats.stale > 0) printf("%s: %llu stale commands not run\n", argv[2], (unsigned long long)stats.stale);
    oc2_consumer_free(consumer);
    oc2_config_free(config);
    return 0;
}
