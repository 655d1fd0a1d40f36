/*
 * A fast publisher for the Monitor ingest benchmark (bench/python/run.py):
 * COUNT exchanges, each a command then its final response, published with
 * libmosquitto at QoS 1 as fast as the broker takes them, with the same
 * MQTT v5 properties as oc2mqtt. COMMAND and RESPONSE are whole messages
 * whose request_id is "00000000-0000-0000-0000-000000000000"; each exchange
 * writes its own id there.
 *
 *   cc -O2 -o monitor_blast monitor_blast.c -lmosquitto
 *   ./monitor_blast PORT COMMAND_TOPIC COMMAND.json RESPONSE_TOPIC RESPONSE.json COUNT
 *
 * Prints one JSON line once the broker acknowledged every publish:
 * {"messages": 2*COUNT, "published_per_s": ...}.
 */
#define _POSIX_C_SOURCE 200809L
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char ZERO_ID[] = "00000000-0000-0000-0000-000000000000";
static volatile long acked = 0;
static volatile int connected = 0;
/* distinct ids from run to run */
static unsigned long run_tag;

static char *slurp(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*len + 1);
    if (fread(buf, 1, (size_t)*len, f) != (size_t)*len) {
        perror(path);
        exit(2);
    }
    fclose(f);
    buf[*len] = 0;
    while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r')) buf[--(*len)] = 0;
    return buf;
}

static char *id_slot(char *payload, const char *path) {
    char *slot = strstr(payload, ZERO_ID);
    if (!slot) {
        fprintf(stderr, "%s: no request_id %s\n", path, ZERO_ID);
        exit(2);
    }
    return slot;
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
    (void)m, (void)ud, (void)flags, (void)p;
    if (rc != 0) {
        fprintf(stderr, "connect refused: %d\n", rc);
        exit(1);
    }
    connected = 1;
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int rc, const mosquitto_property *p) {
    (void)m, (void)ud, (void)mid, (void)rc, (void)p;
    acked++;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT COMMAND_TOPIC COMMAND.json RESPONSE_TOPIC RESPONSE.json COUNT\n", argv[0]);
        return 2;
    }
    long cmd_len, rsp_len;
    char *cmd = slurp(argv[3], &cmd_len), *rsp = slurp(argv[5], &rsp_len);
    char *cmd_id = id_slot(cmd, argv[3]), *rsp_id = id_slot(rsp, argv[5]);
    long count = atol(argv[6]);
    run_tag = (unsigned long)time(NULL) & 0xffffffffUL;
    mosquitto_property *cmd_props = props_for("req"), *rsp_props = props_for("rsp");

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new("monitor-blast", true, NULL);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    if (mosquitto_connect(m, "127.0.0.1", atoi(argv[1]), 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect failed\n");
        return 1;
    }
    while (!connected) mosquitto_loop(m, 100, 1);
    double t0 = now_s();
    char id[64];
    for (long i = 0; i < count; i++) {
        snprintf(id, sizeof id, "%08lx-0000-4000-8000-%012lx", (unsigned long)run_tag, (unsigned long)i);
        memcpy(cmd_id, id, 36);
        memcpy(rsp_id, id, 36);
        mosquitto_publish_v5(m, NULL, argv[2], (int)cmd_len, cmd, 1, false, cmd_props);
        mosquitto_publish_v5(m, NULL, argv[4], (int)rsp_len, rsp, 1, false, rsp_props);
        /* keep the socket moving: send what is queued, read the acks */
        mosquitto_loop(m, 0, 1);
    }
    while (acked < 2 * count) mosquitto_loop(m, 100, 1);
    double el = now_s() - t0;
    printf("{\"messages\": %ld, \"published_per_s\": %.0f}\n", 2 * count, (double)(2 * count) / el);
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
