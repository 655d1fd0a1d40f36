/*
 * The Paho C ceiling: the libmosquitto ping-pong of bench/rust/c/pingpong.c
 * written by hand on the Eclipse Paho C asynchronous API (MQTTAsync), the
 * library oc2mqtt was built on before its own transport (core/src/client/,
 * mqtt-protocol-core on tokio) replaced it: kept as a reference for what a
 * C MQTT library does, not oc2mqtt's transport. Same
 * payloads, MQTT v5, clean start, QoS 1, subscriptions with No Local, the
 * same publish properties as oc2mqtt (payload format indicator, content
 * type, msgType, encoding). Paho C 1.3.16 sets TCP_NODELAY on its socket
 * itself. No JSON parsing, no correlation: the pure transport cost of one
 * command and one response through Mosquitto with Paho C's two threads
 * (one sending, one receiving and running the callbacks; both are per
 * process, so here the consumer and the producer share them), i.e. the best
 * any Paho-based library can do.
 *
 * Link against the static library the paho-mqtt-sys crate builds (the newest
 * $CARGO_TARGET_DIR/release/build/paho-mqtt-sys-x/out holding it):
 *
 *   P=$CARGO_TARGET_DIR/release/build/paho-mqtt-sys-x/out
 *   cc -std=c11 -O2 -I$P/include -o paho_pingpong paho_pingpong.c \
 *      $P/lib/libpaho-mqtt3as.a -lssl -lcrypto -lpthread
 *   ./paho_pingpong PORT COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [dual] [pipe] [handoff]
 *
 * With "dual", the response goes out on oc2/rsp and then oc2/rsp/<producer>
 * and the producer subscribes to both, as oc2mqtt does; the round trip ends
 * when the second (producer-specific) copy arrives. With "pipe", 64
 * commands are kept in flight after the warm-up (each response triggers the
 * next command from Paho's callback thread) and only the rate is reported.
 * With "handoff", the consumer's callback only hands each command to a
 * consumer thread (mutex + condition variable) that publishes the response:
 * the one extra thread switch per round trip of any library whose handler
 * never runs on the network thread (DESIGN.md's rule for oc2mqtt).
 *
 * Prints one JSON line: {"rt_per_s":..., "p50_us":..., "p99_us":..., "n":...}
 * (with "pipe": {"exchanges_per_s":..., "n":...}).
 */
#define _POSIX_C_SOURCE 200809L
#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *CMD_TOPIC = "oc2/cmd/device/paho-consumer";
static const char *RSP_TOPIC = "oc2/rsp/paho-producer";
static const char *RSP_ALL = "oc2/rsp";
static int dual = 0;
static int handoff = 0;
static volatile int pipelined = 0;

struct side {
    MQTTAsync h;
    const char *name;
    const char *sub;
};

static struct side cons = {NULL, "paho-consumer", NULL};
static struct side prod = {NULL, "paho-producer", NULL};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long replies = 0;
static int ready = 0;
static int disconnected = 0;

static char *cmd_payload;
static long cmd_len;
static MQTTProperties cmd_props = MQTTProperties_initializer;
static char *rsp_payload;
static long rsp_len;
static MQTTProperties rsp_props = MQTTProperties_initializer;

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

static void add_prop(MQTTProperties *props, MQTTProperty *p) {
    if (MQTTProperties_add(props, p) != 0) {
        fprintf(stderr, "MQTTProperties_add failed\n");
        exit(1);
    }
}

static void props_for(MQTTProperties *props, char *msg_type) {
    MQTTProperty p;
    memset(&p, 0, sizeof p);
    p.identifier = MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR;
    p.value.byte = 1;
    add_prop(props, &p);

    memset(&p, 0, sizeof p);
    p.identifier = MQTTPROPERTY_CODE_CONTENT_TYPE;
    p.value.data.data = "application/openc2";
    p.value.data.len = (int)strlen(p.value.data.data);
    add_prop(props, &p);

    memset(&p, 0, sizeof p);
    p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    p.value.data.data = "msgType";
    p.value.data.len = (int)strlen(p.value.data.data);
    p.value.value.data = msg_type;
    p.value.value.len = (int)strlen(msg_type);
    add_prop(props, &p);

    memset(&p, 0, sizeof p);
    p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
    p.value.data.data = "encoding";
    p.value.data.len = (int)strlen(p.value.data.data);
    p.value.value.data = "json";
    p.value.value.len = 4;
    add_prop(props, &p);
}

/* QoS 1 publish with the shared properties. Paho copies topic, payload and
 * properties into its command queue, so the buffers can be reused at once.
 * The properties only travel through MQTTAsync_responseOptions (v5). */
static void publish(MQTTAsync h, const char *topic, char *payload, long len, MQTTProperties *props) {
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    msg.payload = payload;
    msg.payloadlen = (int)len;
    msg.qos = 1;
    msg.retained = 0;
    msg.properties = *props;
    int rc = MQTTAsync_sendMessage(h, topic, &msg, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "MQTTAsync_sendMessage(%s): %s\n", topic, MQTTAsync_strerror(rc));
        _exit(1);
    }
}

static void on_failure(void *ctx, MQTTAsync_failureData5 *r) {
    struct side *s = ctx;
    fprintf(stderr, "%s: request failed: rc %d, reason %s, %s\n", s->name, r ? r->code : 0,
            r ? MQTTReasonCode_toString(r->reasonCode) : "?", r && r->message ? r->message : "");
    _exit(1);
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r) {
    struct side *s = ctx;
    /* one topic: a refusal goes to on_failure; several: Paho calls success
     * with the list (reasonCodes is only set when there are several) */
    int bad = r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR;
    if (r->alt.sub.reasonCodeCount > 1)
        for (int i = 0; i < r->alt.sub.reasonCodeCount; i++)
            if (r->alt.sub.reasonCodes[i] >= MQTTREASONCODE_UNSPECIFIED_ERROR) bad = 1;
    if (bad) {
        fprintf(stderr, "%s: subscription refused\n", s->name);
        _exit(1);
    }
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_connected(void *ctx, MQTTAsync_successData5 *r) {
    (void)r;
    struct side *s = ctx;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    opts.onSuccess5 = on_subscribed;
    opts.onFailure5 = on_failure;
    opts.context = s;
    int rc;
    /* No Local, as oc2mqtt subscribes */
    if (dual && s == &prod) {
        char *topics[2] = {(char *)RSP_ALL, (char *)RSP_TOPIC};
        int qos[2] = {1, 1};
        MQTTSubscribe_options so[2] = {MQTTSubscribe_options_initializer, MQTTSubscribe_options_initializer};
        so[0].noLocal = so[1].noLocal = 1;
        opts.subscribeOptionsCount = 2;
        opts.subscribeOptionsList = so;
        rc = MQTTAsync_subscribeMany(s->h, 2, topics, qos, &opts);
    } else {
        opts.subscribeOptions.noLocal = 1;
        rc = MQTTAsync_subscribe(s->h, s->sub, 1, &opts);
    }
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "%s: subscribe: %s\n", s->name, MQTTAsync_strerror(rc));
        _exit(1);
    }
}

static void mark_disconnected(void) {
    pthread_mutex_lock(&lock);
    disconnected++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_disconnected(void *ctx, MQTTAsync_successData5 *r) {
    (void)ctx;
    (void)r;
    mark_disconnected();
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData5 *r) {
    (void)ctx;
    (void)r;
    mark_disconnected();
}

static void connection_lost(void *ctx, char *cause) {
    struct side *s = ctx;
    fprintf(stderr, "%s: connection lost: %s\n", s->name, cause ? cause : "?");
    _exit(1);
}

static void answer(void) {
    if (dual) publish(cons.h, RSP_ALL, rsp_payload, rsp_len, &rsp_props);
    publish(cons.h, RSP_TOPIC, rsp_payload, rsp_len, &rsp_props);
}

/* "handoff": commands waiting for the consumer thread */
static pthread_mutex_t inbox_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inbox_cond = PTHREAD_COND_INITIALIZER;
static long inbox = 0;

static void *consumer_thread(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&inbox_lock);
        while (inbox == 0) pthread_cond_wait(&inbox_cond, &inbox_lock);
        long n = inbox;
        inbox = 0;
        pthread_mutex_unlock(&inbox_lock);
        while (n-- > 0) answer();
    }
    return NULL;
}

/* consumer: answer every command at once from Paho's callback thread, or
 * ("handoff") wake the consumer thread to answer it */
static int on_command(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    if (handoff) {
        pthread_mutex_lock(&inbox_lock);
        inbox++;
        pthread_cond_signal(&inbox_cond);
        pthread_mutex_unlock(&inbox_lock);
    } else {
        answer();
    }
    return 1;
}

/* producer: wake the sender (or, pipelined, send the next command) */
static int on_response(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg) {
    (void)ctx;
    (void)topic_len;
    int mine = strcmp(topic, RSP_TOPIC) == 0;
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    if (!mine) return 1;
    pthread_mutex_lock(&lock);
    replies++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    if (pipelined) publish(prod.h, CMD_TOPIC, cmd_payload, cmd_len, &cmd_props);
    return 1;
}

static void client(struct side *s, const char *uri, MQTTAsync_messageArrived *on_msg) {
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.MQTTVersion = MQTTVERSION_5;
    /* the command queue also counts publishes waiting while connected; the
     * default of 100 could be hit by the consumer with 64 in flight, dual */
    co.maxBufferedMessages = 100000;
    int rc = MQTTAsync_createWithOptions(&s->h, uri, s->name, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "%s: create: %s\n", s->name, MQTTAsync_strerror(rc));
        exit(1);
    }
    rc = MQTTAsync_setCallbacks(s->h, s, connection_lost, on_msg, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "%s: setCallbacks: %s\n", s->name, MQTTAsync_strerror(rc));
        exit(1);
    }
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
    opts.MQTTVersion = MQTTVERSION_5;
    opts.cleanstart = 1;
    opts.keepAliveInterval = 60;
    opts.onSuccess5 = on_connected;
    opts.onFailure5 = on_failure;
    opts.context = s;
    rc = MQTTAsync_connect(s->h, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "%s: connect: %s\n", s->name, MQTTAsync_strerror(rc));
        exit(1);
    }
}

static void disconnect(struct side *s) {
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer5;
    opts.timeout = 1000;
    opts.onSuccess5 = on_disconnected;
    opts.onFailure5 = on_disconnect_failed;
    opts.context = s;
    if (MQTTAsync_disconnect(s->h, &opts) != MQTTASYNC_SUCCESS) mark_disconnected();
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

static void round_trip(void) {
    pthread_mutex_lock(&lock);
    long want = replies + 1;
    pthread_mutex_unlock(&lock);
    publish(prod.h, CMD_TOPIC, cmd_payload, cmd_len, &cmd_props);
    pthread_mutex_lock(&lock);
    while (replies < want) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PORT COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [dual] [pipe] [handoff]\n", argv[0]);
        return 2;
    }
    int pipe_requested = 0;
    for (int i = 6; i < argc; i++) {
        if (strcmp(argv[i], "dual") == 0) dual = 1;
        else if (strcmp(argv[i], "handoff") == 0) handoff = 1;
        else if (strcmp(argv[i], "pipe") == 0) pipe_requested = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int port = atoi(argv[1]);
    cmd_payload = slurp(argv[2], &cmd_len);
    rsp_payload = slurp(argv[3], &rsp_len);
    long warmup = atol(argv[4]);
    double seconds = atof(argv[5]);

    /* Paho asks for this (or a create) before MQTTProperties_add allocates;
     * no TLS here, so OpenSSL is left alone */
    MQTTAsync_init_options io = MQTTAsync_init_options_initializer;
    io.do_openssl_init = 0;
    MQTTAsync_global_init(&io);
    props_for(&cmd_props, "req");
    props_for(&rsp_props, "rsp");

    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
    cons.sub = CMD_TOPIC;
    prod.sub = RSP_TOPIC;
    if (handoff) {
        pthread_t t;
        if (pthread_create(&t, NULL, consumer_thread, NULL) != 0) {
            fprintf(stderr, "cannot start the consumer thread\n");
            return 1;
        }
        pthread_detach(t);
    }
    client(&cons, uri, on_command);
    client(&prod, uri, on_response);
    pthread_mutex_lock(&lock);
    while (ready < 2) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);

    for (long i = 0; i < warmup; i++) round_trip();

    if (pipe_requested) {
        pipelined = 1;
        for (int i = 0; i < 64; i++) publish(prod.h, CMD_TOPIC, cmd_payload, cmd_len, &cmd_props);
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
        round_trip();
        t = now_us();
        lat[n++] = t - t0;
    }
    double elapsed = (t - start) / 1e6;
    qsort(lat, n, sizeof(double), cmp);
    printf("{\"rt_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"n\":%zu}\n", (double)n / elapsed, lat[n / 2],
           lat[(size_t)((double)n * 0.99)], n);
    fflush(stdout);

    disconnect(&prod);
    disconnect(&cons);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 3;
    pthread_mutex_lock(&lock);
    while (disconnected < 2)
        if (pthread_cond_timedwait(&cond, &lock, &deadline) != 0) break;
    pthread_mutex_unlock(&lock);
    MQTTAsync_destroy(&prod.h);
    MQTTAsync_destroy(&cons.h);
    MQTTProperties_free(&cmd_props);
    MQTTProperties_free(&rsp_props);
    free(lat);
    free(cmd_payload);
    free(rsp_payload);
    return 0;
}
