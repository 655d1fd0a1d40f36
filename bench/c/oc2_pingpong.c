/* Sequential round trips through liboc2mqtt: a C producer sends the
 * benchmark command to a C consumer, which answers with the benchmark
 * response; the next command goes out when the final response is in.
 * One process, two connections, through the broker.
 *
 *   ./oc2_pingpong BROKER_URL COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [MODE]
 *
 * COMMAND.json and RESPONSE.json are whole messages (bench/payloads); their
 * command and response objects are sent, with `response_requested` set to
 * `complete` so that the consumer's own reply is the final response (as the
 * Rust benchmark does). MODE picks the consumer and the producer:
 *   (none)        the pull loop (`oc2_consumer_next` + `oc2_consumer_reply`)
 *                 on its own thread; one command in flight;
 *   serve         the library's callback thread (`oc2_consumer_serve`);
 *   handler       the handler style (`oc2_consumer_serve_handler`: the
 *                 library answers with the status the handler returns);
 *   pipe          the pull loop, 64 commands in flight: OC2_PIPE_SENDERS
 *                 producer threads (default 16) each keep a ring of 64/N
 *                 exchanges, wait for the oldest and send the next;
 *   pipe-handler  the handler style, 64 in flight;
 *   inline        the inline style (`oc2_consumer_serve_inline`: the same
 *                 handler, run on the library's network thread);
 *   pipe-inline   the inline style, 64 in flight.
 *
 * Prints one JSON line: {"rt_per_s":..., "p50_us":..., "p99_us":..., "n":...}
 * (the same as bench/rust/c/pingpong.c), or with pipe modes
 * {"exchanges_per_s":..., "n":...}, measured as bench/rust/c/pingpong.c's
 * `pipe` is: half a second to settle, then SECONDS. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oc2mqtt.h"

static char response_json[4096];
static size_t response_len;
/* the `results` object of the response, for the handler style */
static char results_json[4096];
static size_t results_len;
static atomic_int stop;

static void die(const char *what, oc2_result rc) {
    char text[128];
    size_t n;
    oc2_result_text(rc, text, sizeof text, &n);
    fprintf(stderr, "oc2_pingpong: %s: %s\n", what, text);
    exit(1);
}

/* The content object (command or response) of a whole message in a file. */
static void content_of(const char *path, char *out, size_t cap, size_t *len) {
    static char buf[65536];
    FILE *f = fopen(path, "rb");
    if (!f) die(path, OC2_RESULT_IO);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    oc2_codec *codec = NULL;
    oc2_message *m = NULL;
    oc2_str content;
    oc2_codec_new(&codec);
    oc2_result rc = oc2_codec_decode(codec, (const uint8_t *)buf, n, NULL, &m);
    if (rc != OC2_RESULT_OK) die(path, rc);
    oc2_message_content_json(m, &content);
    if (content.len >= cap) die(path, OC2_RESULT_INSUFFICIENT_SIZE);
    memcpy(out, content.data, content.len + 1);
    *len = content.len;
    oc2_message_free(m);
    oc2_codec_free(codec);
}

static void answer(void *userdata, const oc2_consumer *consumer, oc2_command *command) {
    (void)userdata;
    oc2_result rc = oc2_consumer_reply(consumer, command, response_json, response_len);
    if (rc != OC2_RESULT_OK) die("reply", rc);
    oc2_command_free(command);
}

/* Handler style: the status, with the benchmark response's text and results. */
static uint16_t handle(void *userdata, const oc2_message *command, oc2_reply *reply) {
    (void)userdata;
    (void)command;
    oc2_reply_set_text(reply, "OK");
    if (oc2_reply_set_results(reply, results_json, results_len) != OC2_RESULT_OK) return 0;
    return 200;
}

static void *device_loop(void *consumer) {
    while (!atomic_load(&stop)) {
        oc2_command *command = NULL;
        oc2_result rc = oc2_consumer_next(consumer, 100, &command);
        if (rc == OC2_RESULT_TIMEOUT) continue;
        if (rc != OC2_RESULT_OK) break;
        answer(NULL, consumer, command);
    }
    return NULL;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static oc2_exchange *start(oc2_producer *producer, const char *command, size_t len) {
    static const char *to[] = {"c-consumer"};
    oc2_exchange *x = NULL;
    oc2_result rc = oc2_producer_send(producer, command, len, to, 1, 5000, &x);
    if (rc != OC2_RESULT_OK) die("send", rc);
    return x;
}

/* Waits for the final response of `x` and frees it. */
static void finish(oc2_exchange *x) {
    oc2_message *r = NULL;
    oc2_result rc;
    while ((rc = oc2_exchange_next(x, OC2_WAIT_FOREVER, &r)) == OC2_RESULT_OK) oc2_message_free(r);
    bool complete = false;
    oc2_exchange_is_complete(x, &complete);
    if (!complete) die("exchange", OC2_RESULT_TIMEOUT);
    oc2_exchange_free(x);
}

/* With OC2_SEND_WAIT=1, sequential round trips use oc2_producer_send_wait
 * (send and wait for the end in one call, one wake-up) instead of
 * oc2_producer_send and then oc2_exchange_next. */
static int send_wait;

/* One round trip: send, wait for the final response. */
static void round_trip(oc2_producer *producer, const char *command, size_t len) {
    if (!send_wait) {
        finish(start(producer, command, len));
        return;
    }
    static const char *to[] = {"c-consumer"};
    oc2_exchange *x = NULL;
    oc2_result rc = oc2_producer_send_wait(producer, command, len, to, 1, 5000, &x);
    if (rc != OC2_RESULT_OK) die("send_wait", rc);
    finish(x);
}

#define IN_FLIGHT 64
#define MAX_SENDERS 64

struct sender {
    pthread_t thread;
    oc2_producer *producer;
    const char *command;
    size_t len;
    int ring;
};

static atomic_long sent_total;
static atomic_int pipe_stop;

/* One sender thread: a ring of `ring` exchanges; waits for the oldest,
 * sends the next, until told to stop. */
static void *send_loop(void *arg) {
    struct sender *s = arg;
    oc2_exchange *ring[IN_FLIGHT];
    for (int i = 0; i < s->ring; i++) ring[i] = start(s->producer, s->command, s->len);
    for (int i = 0; !atomic_load(&pipe_stop); i = (i + 1) % s->ring) {
        finish(ring[i]);
        ring[i] = start(s->producer, s->command, s->len);
        atomic_fetch_add(&sent_total, 1);
    }
    for (int i = 0; i < s->ring; i++) finish(ring[i]);
    return NULL;
}

static void sleep_s(double s) {
    struct timespec d = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&d, NULL);
}

/* 64 in flight for `seconds` after half a second to settle: exchanges/s.
 * `senders` threads share them (a send returns once the broker acknowledged
 * the command, so one thread alone waits for each acknowledgement in turn). */
static void pipelined(oc2_producer *producer, const char *command, size_t len, double seconds, int senders) {
    struct sender s[MAX_SENDERS];
    for (int i = 0; i < senders; i++) {
        s[i] = (struct sender){.producer = producer, .command = command, .len = len, .ring = IN_FLIGHT / senders};
        pthread_create(&s[i].thread, NULL, send_loop, &s[i]);
    }
    sleep_s(0.5);
    long n0 = atomic_load(&sent_total);
    double t0 = now_us();
    sleep_s(seconds);
    long n1 = atomic_load(&sent_total);
    double el = (now_us() - t0) / 1e6;
    atomic_store(&pipe_stop, 1);
    for (int i = 0; i < senders; i++) pthread_join(s[i].thread, NULL);
    printf("{\"exchanges_per_s\": %.1f, \"n\": %ld, \"senders\": %d}\n", (double)(n1 - n0) / el, n1 - n0, senders);
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s BROKER_URL COMMAND.json RESPONSE.json WARMUP_COUNT SECONDS [MODE]\n", argv[0]);
        return 2;
    }
    const char *mode = argc == 7 ? argv[6] : "pull";
    int serve = strcmp(mode, "serve") == 0;
    int inline_ = strcmp(mode, "inline") == 0 || strcmp(mode, "pipe-inline") == 0;
    /* inline: the handler style's handler, on the network thread */
    int handler = strcmp(mode, "handler") == 0 || strcmp(mode, "pipe-handler") == 0 || inline_;
    int pipe = strcmp(mode, "pipe") == 0 || strcmp(mode, "pipe-handler") == 0 || strcmp(mode, "pipe-inline") == 0;
    if (!serve && !handler && !pipe && strcmp(mode, "pull") != 0) {
        fprintf(stderr, "unknown mode %s (serve, handler, inline, pipe, pipe-handler, pipe-inline)\n", mode);
        return 2;
    }
    char command[4096];
    size_t command_len;
    content_of(argv[2], command, sizeof command, &command_len);
    content_of(argv[3], response_json, sizeof response_json, &response_len);
    const char *results = strstr(response_json, "\"results\":");
    if (results) { /* the response object ends with its results */
        results += strlen("\"results\":");
        results_len = response_len - (size_t)(results - response_json) - 1;
        memcpy(results_json, results, results_len);
    } else {
        memcpy(results_json, "{}", 3);
        results_len = 2;
    }
    char *rr = strstr(command, "\"response_requested\":\"ack\"");
    if (rr) { /* "complete" is 5 bytes longer than "ack" */
        char rest[2048];
        snprintf(rest, sizeof rest, "%s", rr + strlen("\"response_requested\":\"ack\""));
        size_t room = sizeof command - (size_t)(rr - command);
        command_len = (size_t)(rr - command) + (size_t)snprintf(rr, room, "\"response_requested\":\"complete\"%s", rest);
    }

    oc2_config_builder *b = NULL;
    oc2_config *config = NULL;
    oc2_config_builder_new(argv[1], &b);
    oc2_result rc = oc2_config_builder_build(b, &config);
    oc2_config_builder_free(b);
    if (rc != OC2_RESULT_OK) die("config", rc);
    oc2_consumer *consumer = NULL;
    oc2_producer *producer = NULL;
    if ((rc = oc2_consumer_connect(config, "c-consumer", NULL, 0, NULL, 0, &consumer)) != OC2_RESULT_OK)
        die("consumer", rc);
    if ((rc = oc2_producer_connect(config, "c-producer", &producer)) != OC2_RESULT_OK) die("producer", rc);
    pthread_t device;
    if (serve) {
        if ((rc = oc2_consumer_serve(consumer, answer, NULL)) != OC2_RESULT_OK) die("serve", rc);
    } else if (inline_) {
        if ((rc = oc2_consumer_serve_inline(consumer, handle, NULL)) != OC2_RESULT_OK) die("serve_inline", rc);
    } else if (handler) {
        if ((rc = oc2_consumer_serve_handler(consumer, handle, NULL)) != OC2_RESULT_OK) die("serve_handler", rc);
    } else {
        pthread_create(&device, NULL, device_loop, consumer);
    }

    const char *wait_env = getenv("OC2_SEND_WAIT");
    send_wait = wait_env && strcmp(wait_env, "1") == 0;
    long warmup = atol(argv[4]);
    double seconds = atof(argv[5]);
    for (long i = 0; i < warmup; i++) round_trip(producer, command, command_len);
    if (pipe) {
        const char *env = getenv("OC2_PIPE_SENDERS");
        int senders = env ? atoi(env) : 16;
        if (senders < 1 || senders > MAX_SENDERS || IN_FLIGHT % senders != 0) {
            fprintf(stderr, "OC2_PIPE_SENDERS: a divisor of %d\n", IN_FLIGHT);
            return 2;
        }
        pipelined(producer, command, command_len, seconds, senders);
        fflush(stdout);
        atomic_store(&stop, 1);
        if (!handler) pthread_join(device, NULL);
        oc2_producer_free(producer);
        oc2_consumer_free(consumer);
        oc2_config_free(config);
        return 0;
    }
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    double start = now_us(), end = start + seconds * 1e6, t = start;
    while (t < end && n < cap) {
        round_trip(producer, command, command_len);
        double t2 = now_us();
        lat[n++] = t2 - t;
        t = t2;
    }
    double elapsed = t - start;
    qsort(lat, n, sizeof *lat, by_value);
    printf("{\"rt_per_s\": %.0f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"n\": %zu}\n", n / (elapsed / 1e6), lat[n / 2],
           lat[n * 99 / 100], n);

    atomic_store(&stop, 1);
    if (!serve && !handler) pthread_join(device, NULL);
    free(lat);
    oc2_producer_free(producer);
    oc2_consumer_free(consumer);
    oc2_config_free(config);
    return 0;
}
