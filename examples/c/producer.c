/* Sends one command to one device and prints each response as it arrives.
 *
 *   ./producer mqtt://127.0.0.1:1883 fw-1 '{"action":"query","target":{"features":["versions"]}}'
 *
 * Exit status: 0 when the device sent its final response, 3 when the
 * timeout passed first, 1 on errors. */
#include <stdio.h>
#include <string.h>

#include <oc2mqtt.h>

static int fail(const char *what, oc2_result rc, const char *detail) {
    char text[128];
    size_t n;
    oc2_result_text(rc, text, sizeof text, &n);
    fprintf(stderr, "%s: %s%s%s\n", what, text, detail && *detail ? ": " : "", detail ? detail : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s BROKER_URL DEVICE_ID [COMMAND_JSON]\n", argv[0]);
        return 2;
    }
    const char *command = argc == 4 ? argv[3] : "{\"action\":\"query\",\"target\":{\"features\":[\"versions\"]}}";

    oc2_config_builder *builder = NULL;
    oc2_config *config = NULL;
    char detail[512] = "";
    size_t n;
    oc2_result rc = oc2_config_builder_new(argv[1], &builder);
    if (rc == OC2_RESULT_OK) rc = oc2_config_builder_build(builder, &config);
    oc2_config_builder_free(builder);
    if (rc != OC2_RESULT_OK) return fail("configuration", rc, NULL);

    oc2_producer *producer = NULL;
    rc = oc2_producer_connect(config, "example-producer", &producer);
    if (rc != OC2_RESULT_OK) {
        oc2_config_last_error(config, detail, sizeof detail, &n);
        oc2_config_free(config);
        return fail("connect", rc, detail);
    }

    /* Send to the one device, waiting up to 5 seconds for its answer. */
    const char *to[] = {argv[2]};
    oc2_exchange *exchange = NULL;
    rc = oc2_producer_send(producer, command, strlen(command), to, 1, 5000, &exchange);
    if (rc != OC2_RESULT_OK) {
        oc2_producer_last_error(producer, detail, sizeof detail, &n);
        oc2_producer_free(producer);
        oc2_config_free(config);
        return fail("send", rc, detail);
    }

    /* Each response: a 102 "working on it" may come before the final one. */
    oc2_message *response = NULL;
    while (oc2_exchange_next(exchange, OC2_WAIT_FOREVER, &response) == OC2_RESULT_OK) {
        uint16_t status = 0;
        uint64_t latency_us = 0;
        oc2_str from = {"?", 1}, content;
        oc2_message_status(response, &status);
        oc2_message_from(response, &from);
        oc2_message_latency_us(response, &latency_us);
        oc2_message_content_json(response, &content);
        printf("%u from %s after %.1f ms: %s\n", status, from.data, latency_us / 1000.0, content.data);
        oc2_message_free(response);
    }

    bool complete = false;
    oc2_exchange_is_complete(exchange, &complete);
    if (!complete) fprintf(stderr, "no final response from %s within 5 s\n", argv[2]);
    oc2_exchange_free(exchange);
    oc2_producer_free(producer);
    oc2_config_free(config);
    return complete ? 0 : 3;
}
