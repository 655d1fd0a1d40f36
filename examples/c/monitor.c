/* Prints the OpenC2 traffic on a broker, one line per message, with the
 * latency of each response to its command; says when the broker goes away
 * and comes back (connection callbacks), and prints the library's warnings
 * (log callback) on stderr.
 *
 *   ./monitor mqtt://127.0.0.1:1883 [SECONDS]
 *
 * Runs for SECONDS (default: until killed). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <oc2mqtt.h>

static void on_log(void *userdata, const oc2_log_params *p) {
    fprintf((FILE *)userdata, "oc2mqtt: %s\n", p->message.data);
}

static void on_connect(void *userdata, const oc2_connection_info *info) {
    (void)userdata;
    printf("connected to %s (MQTT %s)\n", info->broker.data, info->mqtt_version == OC2_MQTT_V5 ? "5" : "3.1.1");
    fflush(stdout);
}

static void on_disconnect(void *userdata, const oc2_disconnect_info *info) {
    (void)userdata;
    if (info->kind == OC2_DISCONNECT_LOST) printf("offline: %s; reconnecting\n", info->reason.data);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s BROKER_URL [SECONDS]\n", argv[0]);
        return 2;
    }
    time_t until = argc == 3 ? time(NULL) + atoi(argv[2]) : 0;

    oc2_config_builder *builder = NULL;
    oc2_config *config = NULL;
    oc2_monitor *monitor = NULL;
    oc2_log_set_callback(on_log, OC2_LOG_WARN, stderr);
    if (oc2_config_builder_new(argv[1], &builder) != OC2_RESULT_OK ||
        oc2_config_builder_build(builder, &config) != OC2_RESULT_OK) {
        fprintf(stderr, "invalid broker URL %s\n", argv[1]);
        oc2_config_builder_free(builder);
        return 2;
    }
    oc2_config_builder_free(builder);
    if (oc2_monitor_connect(config, NULL, &monitor) != OC2_RESULT_OK) { /* NULL: all of oc2/# */
        char detail[512];
        size_t n;
        oc2_config_last_error(config, detail, sizeof detail, &n);
        fprintf(stderr, "connect: %s\n", detail);
        oc2_config_free(config);
        return 1;
    }
    printf("watching %s\n", argv[1]);
    fflush(stdout);
    oc2_monitor_set_connection_callbacks(monitor, on_connect, on_disconnect, NULL);

    while (!until || time(NULL) < until) {
        oc2_monitor_event *event = NULL;
        oc2_result rc = oc2_monitor_next(monitor, 500, &event);
        if (rc == OC2_RESULT_TIMEOUT) continue;
        if (rc != OC2_RESULT_OK) break;

        oc2_event_kind kind = 0;
        const oc2_message *m = NULL;
        oc2_str topic = {"", 0}, json, reason, request_id;
        oc2_bytes payload;
        const oc2_strings *missing = NULL;
        uint64_t latency_us = 0;
        oc2_monitor_event_kind(event, &kind);
        oc2_monitor_event_topic(event, &topic);
        if (oc2_monitor_event_message(event, &m) == OC2_RESULT_OK) {
            oc2_message_json(m, &json);
            if (kind == OC2_EVENT_RESPONSE && oc2_message_latency_us(m, &latency_us) == OC2_RESULT_OK)
                printf("%-24s %6.1f ms  %s\n", topic.data, latency_us / 1000.0, json.data);
            else
                printf("%-24s            %s\n", topic.data, json.data);
        } else if (oc2_monitor_event_undecodable(event, &reason, &payload) == OC2_RESULT_OK) {
            printf("%-24s undecodable (%zu bytes): %s\n", topic.data, payload.len, reason.data);
        } else if (oc2_monitor_event_unanswered(event, &request_id, &missing) == OC2_RESULT_OK) {
            size_t count = 0;
            oc2_strings_len(missing, &count);
            printf("request %s: %zu responder(s) never answered\n", request_id.data, count);
        }
        fflush(stdout);
        oc2_monitor_event_free(event);
    }

    oc2_monitor_free(monitor);
    oc2_config_free(config);
    return 0;
}
