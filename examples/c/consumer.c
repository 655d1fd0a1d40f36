/* A device: answers `query features` and `deny ipv4_net` commands.
 *
 *   ./consumer mqtt://127.0.0.1:1883 fw-1
 *
 * It declares what it implements (profile slpf, the pair deny:ipv4_net);
 * the library then answers `query features` by itself, replies 501 to any
 * other action/target, drops duplicates and ignores commands addressed to
 * other devices. What reaches this loop is a deny to carry out.
 * Stop it with Ctrl-C. */
#include <signal.h>
#include <stdio.h>
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
    if (argc != 3) {
        fprintf(stderr, "usage: %s BROKER_URL DEVICE_ID\n", argv[0]);
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
    const char *profiles[] = {"slpf"};
    const char *pairs[] = {"deny:ipv4_net"};
    oc2_consumer *consumer = NULL;
    rc = oc2_consumer_connect(config, argv[2], profiles, 1, pairs, 1, &consumer);
    if (rc != OC2_RESULT_OK) {
        oc2_config_last_error(config, detail, sizeof detail, &n);
        oc2_config_free(config);
        return fail("connect", rc, detail);
    }
    printf("%s: waiting for commands\n", argv[2]);
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

    oc2_consumer_free(consumer);
    oc2_config_free(config);
    return 0;
}
