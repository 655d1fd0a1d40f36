/*
 * The fast publisher of the Monitor ingest benchmark (bench.mjs): COUNT
 * OpenC2 exchanges, each a command on oc2/cmd/device/<consumer> then its
 * response on oc2/rsp/<producer>, published as fast as libmosquitto goes
 * (MQTT v5, QoS 1, no limit on messages in flight, TCP_NODELAY), with the
 * publish properties of MQTT-T 3.4 (payload format indicator, content
 * type, msgType, encoding). The payloads are the templates bench.mjs
 * writes, with "@ID@" replaced by a distinct request id per exchange.
 *
 *   cc -O2 -o ingest-publisher ingest_publisher.c -lmosquitto
 *   ./ingest-publisher PORT COMMAND_TEMPLATE RESPONSE_TEMPLATE CMD_TOPIC RSP_TOPIC COUNT
 *
 * Prints one JSON line once the broker acknowledged every publish:
 * {"messages":..., "seconds":...}.
 */
#define _POSIX_C_SOURCE 200809L
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile long acked = 0;
static volatile int connected = 0;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        perror(path);
        exit(2);
    }
    buf[len] = 0;
    fclose(f);
    return buf;
}

/* The template with "@ID@" replaced by id; out has room for it. */
static int fill(char *out, size_t cap, const char *tpl, const char *id) {
    const char *at = strstr(tpl, "@ID@");
    if (!at) return snprintf(out, cap, "%s", tpl);
    return snprintf(out, cap, "%.*s%s%s", (int)(at - tpl), tpl, id, at + 4);
}

static mosquitto_property *props_for(const char *msg_type) {
    mosquitto_property *p = NULL;
    mosquitto_property_add_byte(&p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);
    mosquitto_property_add_string(&p, MQTT_PROP_CONTENT_TYPE, "application/openc2");
    mosquitto_property_add_string_pair(&p, MQTT_PROP_USER_PROPERTY, "msgType", msg_type);
    mosquitto_property_add_string_pair(&p, MQTT_PROP_USER_PROPERTY, "encoding", "json");
    return p;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *p) {
    (void)m;
    (void)ud;
    (void)flags;
    (void)p;
    if (rc != 0) {
        fprintf(stderr, "connect refused: %d\n", rc);
        exit(1);
    }
    connected = 1;
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int rc, const mosquitto_property *p) {
    (void)m;
    (void)ud;
    (void)mid;
    (void)rc;
    (void)p;
    acked++;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT COMMAND_TEMPLATE RESPONSE_TEMPLATE CMD_TOPIC RSP_TOPIC COUNT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    char *cmd_tpl = slurp(argv[2]);
    char *rsp_tpl = slurp(argv[3]);
    const char *cmd_topic = argv[4];
    const char *rsp_topic = argv[5];
    long count = atol(argv[6]);
    size_t cap = strlen(cmd_tpl) + strlen(rsp_tpl) + 64;
    char *buf = malloc(cap);
    mosquitto_property *cmd_props = props_for("req");
    mosquitto_property *rsp_props = props_for("rsp");

    mosquitto_lib_init();
    char client_id[64];
    snprintf(client_id, sizeof client_id, "bench-ingest-publisher-%ld", (long)time(NULL));
    struct mosquitto *m = mosquitto_new(client_id, true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(m, 0);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to port %d\n", port);
        return 1;
    }
    while (!connected) mosquitto_loop(m, 100, 1);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char id[40];
    for (long i = 0; i < count; i++) {
        snprintf(id, sizeof id, "ingest-%ld-%ld", (long)t0.tv_sec, i);
        int n = fill(buf, cap, cmd_tpl, id);
        mosquitto_publish_v5(m, NULL, cmd_topic, n, buf, 1, false, cmd_props);
        n = fill(buf, cap, rsp_tpl, id);
        mosquitto_publish_v5(m, NULL, rsp_topic, n, buf, 1, false, rsp_props);
        /* write out what is queued, read the acknowledgements, without waiting */
        mosquitto_loop(m, 0, 1);
    }
    while (acked < 2 * count) {
        if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "connection lost after %ld acknowledgements\n", acked);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"messages\":%ld,\"seconds\":%.6f}\n", 2 * count,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
