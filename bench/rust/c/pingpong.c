/*
 * The C floor: a hand-written libmosquitto ping-pong with the oc2mqtt
 * benchmark payloads, MQTT v5, QoS 1, the same publish properties as
 * oc2mqtt (payload format indicator, content type, msgType, encoding),
 * TCP_NODELAY on both client sockets. No JSON parsing, no correlation:
 * the pure transport cost of one command and one response through Mosquitto.
 *
 *   cc -O2 -o pingpong pingpong.c -lmosquitto -lpthread
 *   ./pingpong PORT COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [dual] [pipe]
 *
 * With "dual", the response goes out on oc2/rsp and then oc2/rsp/<producer>
 * and the producer subscribes to both, as oc2mqtt does; the round trip ends
 * when the second (producer-specific) copy arrives. With "pipe", 64
 * commands are kept in flight (each response triggers the next command from
 * the network thread) and only the rate is reported.
 *
 * Prints one JSON line: {"rt_per_s":..., "p50_us":..., "p99_us":..., "n":...}.
 */
#define _POSIX_C_SOURCE 200809L
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *CMD_TOPIC = "oc2/cmd/device/c-consumer";
static const char *RSP_TOPIC = "oc2/rsp/c-producer";
static const char *RSP_ALL = "oc2/rsp";
static int dual = 0;
/* set after the warm-up, so that exactly 64 commands are in flight */
static volatile int pipelined = 0;
static char *cmd_payload;
static long cmd_len_g;
static mosquitto_property *cmd_props_g;

struct side {
    struct mosquitto *m;
    const char *sub;
    int subscribed;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long replies = 0;
static int ready = 0;

static char *rsp_payload;
static long rsp_len;
static mosquitto_property *rsp_props;

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
    /* strip one trailing newline, as the Rust side serialises compactly */
    while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r')) (*len)--;
    return buf;
}

static mosquitto_property *props_for(const char *msg_type) {
    mosquitto_property *p = NULL;
    mosquitto_property_add_byte(&p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);
    mosquitto_property_add_string(&p, MQTT_PROP_CONTENT_TYPE, "application/openc2");
    mosquitto_property_add_string_pair(&p, MQTT_PROP_USER_PROPERTY, "msgType", msg_type);
    mosquitto_property_add_string_pair(&p, MQTT_PROP_USER_PROPERTY, "encoding", "json");
    return p;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *props) {
    (void)flags;
    (void)props;
    struct side *s = ud;
    if (rc != 0) {
        fprintf(stderr, "connect refused: %d\n", rc);
        exit(1);
    }
    /* No Local, as oc2mqtt subscribes */
    if (dual && strcmp(s->sub, RSP_TOPIC) == 0) {
        char *subs[2] = {(char *)RSP_ALL, (char *)RSP_TOPIC};
        mosquitto_subscribe_multiple(m, NULL, 2, subs, 1, MQTT_SUB_OPT_NO_LOCAL, NULL);
    } else {
        mosquitto_subscribe_v5(m, NULL, s->sub, 1, MQTT_SUB_OPT_NO_LOCAL, NULL);
    }
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted, const mosquitto_property *p) {
    (void)m;
    (void)mid;
    (void)n;
    (void)granted;
    (void)p;
    struct side *s = ud;
    pthread_mutex_lock(&lock);
    s->subscribed = 1;
    ready++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* consumer: answer every command at once */
static void on_command(struct mosquitto *m, void *ud, const struct mosquitto_message *msg, const mosquitto_property *p) {
    (void)ud;
    (void)msg;
    (void)p;
    if (dual) mosquitto_publish_v5(m, NULL, RSP_ALL, (int)rsp_len, rsp_payload, 1, false, rsp_props);
    mosquitto_publish_v5(m, NULL, RSP_TOPIC, (int)rsp_len, rsp_payload, 1, false, rsp_props);
}

/* producer: wake the sender */
static void on_response(struct mosquitto *m, void *ud, const struct mosquitto_message *msg, const mosquitto_property *p) {
    (void)ud;
    (void)p;
    if (strcmp(msg->topic, RSP_TOPIC) != 0) return;
    pthread_mutex_lock(&lock);
    replies++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    if (pipelined) mosquitto_publish_v5(m, NULL, CMD_TOPIC, (int)cmd_len_g, cmd_payload, 1, false, cmd_props_g);
}

static struct mosquitto *client(const char *id, struct side *s, int port,
                                void (*on_msg)(struct mosquitto *, void *, const struct mosquitto_message *, const mosquitto_property *)) {
    struct mosquitto *m = mosquitto_new(id, true, s);
    if (!m) {
        fprintf(stderr, "mosquitto_new failed\n");
        exit(1);
    }
    s->m = m;
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_message_v5_callback_set(m, on_msg);
    int rc = mosquitto_connect(m, "127.0.0.1", port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect: %s\n", mosquitto_strerror(rc));
        exit(1);
    }
    mosquitto_loop_start(m);
    return m;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void round_trip(struct mosquitto *prod, const char *cmd, long cmd_len, mosquitto_property *cmd_props) {
    pthread_mutex_lock(&lock);
    long want = replies + 1;
    pthread_mutex_unlock(&lock);
    mosquitto_publish_v5(prod, NULL, CMD_TOPIC, (int)cmd_len, cmd, 1, false, cmd_props);
    pthread_mutex_lock(&lock);
    while (replies < want) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [dual] [pipe]\n", argv[0]);
        return 2;
    }
    int pipe_requested = 0;
    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "dual") == 0) dual = 1;
        else if (strcmp(argv[i], "pipe") == 0) pipe_requested = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int port = atoi(argv[1]);
    long cmd_len;
    char *cmd = slurp(argv[2], &cmd_len);
    rsp_payload = slurp(argv[3], &rsp_len);
    long warmup = atol(argv[4]);
    double seconds = atof(argv[5]);
    mosquitto_property *cmd_props = props_for("req");
    rsp_props = props_for("rsp");

    mosquitto_lib_init();
    struct side cons = {.sub = CMD_TOPIC}, prod = {.sub = RSP_TOPIC};
    client("c-consumer", &cons, port, on_command);
    struct mosquitto *p = client("c-producer", &prod, port, on_response);
    pthread_mutex_lock(&lock);
    while (ready < 2) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);

    for (long i = 0; i < warmup; i++) round_trip(p, cmd, cmd_len, cmd_props);

    if (pipe_requested) {
        cmd_payload = cmd;
        cmd_len_g = cmd_len;
        cmd_props_g = cmd_props;
        pipelined = 1;
        for (int i = 0; i < 64; i++) mosquitto_publish_v5(p, NULL, CMD_TOPIC, (int)cmd_len, cmd, 1, false, cmd_props);
        struct timespec half = {0, 500000000};
        nanosleep(&half, NULL);
        pthread_mutex_lock(&lock);
        long r0 = replies;
        pthread_mutex_unlock(&lock);
        double t0 = now_us();
        struct timespec d = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&d, NULL);
        pthread_mutex_lock(&lock);
        long r1 = replies;
        pthread_mutex_unlock(&lock);
        double el = (now_us() - t0) / 1e6;
        pipelined = 0;
        printf("{\"exchanges_per_s\":%.1f,\"n\":%ld}\n", (double)(r1 - r0) / el, r1 - r0);
        fflush(stdout);
        _exit(0);
    }

    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof(double));
    double start = now_us(), end = start + seconds * 1e6, t = start;
    while (t < end && n < cap) {
        double t0 = now_us();
        round_trip(p, cmd, cmd_len, cmd_props);
        t = now_us();
        lat[n++] = t - t0;
    }
    double elapsed = (t - start) / 1e6;
    qsort(lat, n, sizeof(double), cmp);
    printf("{\"rt_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"n\":%zu}\n", (double)n / elapsed, lat[n / 2],
           lat[(size_t)((double)n * 0.99)], n);
    fflush(stdout);
    mosquitto_disconnect(p);
    mosquitto_disconnect(cons.m);
    mosquitto_loop_stop(p, false);
    mosquitto_loop_stop(cons.m, false);
    return 0;
}
