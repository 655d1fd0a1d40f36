/* Connection callbacks (on_connect / on_disconnect) on every role and the
 * log callback, against a Mosquitto this test stops and starts again on the
 * same port.
 *
 * Environment: OC2_TEST_BROKER_PY (tests/broker/broker.py; tests/with_broker.sh
 * sets it). The broker is this test's own, started and stopped by PID. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "testing.h"

static const char *broker_py;
static char broker_dir[] = "/tmp/oc2-c-events.XXXXXX";
static char url[64];
static int port;
static long broker_pid;

/* Starts the broker (on `port` again when not 0); its pid and port from the JSON line. */
static int start_broker(void) {
    char cmd[512];
    if (port)
        snprintf(cmd, sizeof cmd, "python3 %s start --dir %s --port %d", broker_py, broker_dir, port);
    else
        snprintf(cmd, sizeof cmd, "python3 %s start --dir %s", broker_py, broker_dir);
    FILE *out = popen(cmd, "r");
    char line[4096] = {0};
    if (!out) return 0;
    size_t n = fread(line, 1, sizeof line - 1, out);
    line[n] = 0;
    if (pclose(out) != 0) return 0;
    const char *p = strstr(line, "\"pid\": ");
    const char *q = strstr(line, "\"port\": ");
    if (!p || !q) return 0;
    broker_pid = strtol(p + 7, NULL, 10);
    port = (int)strtol(q + 8, NULL, 10);
    snprintf(url, sizeof url, "mqtt://127.0.0.1:%d", port);
    return 1;
}

static void stop_broker(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s stop --pid %ld", broker_py, broker_pid);
    CHECK(system(cmd) == 0);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* What one role's callbacks saw, written by its library thread only. */
#define MAX_SEEN 64
typedef struct {
    atomic_int n;
    char kinds[MAX_SEEN];            /* 'C' connect, 'L' lost, 'F' attempt failed, 'X' closed */
    oc2_result results[MAX_SEEN];
    unsigned attempts[MAX_SEEN];
    int first_failure_names_broker;  /* the failed attempt's reason and broker name the URL */
    int connect_info_ok;             /* every on_connect: this broker, MQTT v5, no session */
    int lost_has_reason;
} seen;

static void push(seen *s, char kind, oc2_result rc, unsigned attempt) {
    int i = atomic_load(&s->n);
    if (i >= MAX_SEEN) return;
    s->kinds[i] = kind;
    s->results[i] = rc;
    s->attempts[i] = attempt;
    atomic_store(&s->n, i + 1);
}

static void on_connect(void *userdata, const oc2_connection_info *info) {
    seen *s = userdata;
    int ok = info->broker.data && strcmp(info->broker.data, url) == 0 &&
             info->mqtt_version == OC2_MQTT_V5 && !info->session_resumed;
    if (atomic_load(&s->n) == 0) s->connect_info_ok = ok;
    else s->connect_info_ok = s->connect_info_ok && ok;
    push(s, 'C', OC2_RESULT_OK, 0);
}

static void on_disconnect(void *userdata, const oc2_disconnect_info *info) {
    seen *s = userdata;
    switch (info->kind) {
    case OC2_DISCONNECT_LOST:
        s->lost_has_reason = info->reason.len > 0 && info->reason.data[info->reason.len] == 0 &&
                             strcmp(info->broker.data, url) == 0;
        push(s, 'L', info->result, info->attempt);
        break;
    case OC2_DISCONNECT_RECONNECT_FAILED:
        if (info->attempt == 1)
            s->first_failure_names_broker = strstr(info->reason.data, url) != NULL &&
                                            strcmp(info->broker.data, url) == 0;
        push(s, 'F', info->result, info->attempt);
        break;
    case OC2_DISCONNECT_CLOSED:
        push(s, 'X', info->result, info->attempt);
        break;
    default:
        push(s, '?', info->result, info->attempt);
    }
}

static int count(seen *s, char kind) {
    int k = 0, n = atomic_load(&s->n);
    for (int i = 0; i < n; i++) k += s->kinds[i] == kind;
    return k;
}

static int wait_for(seen *s, char kind, int times, long ms) {
    for (long waited = 0; waited < ms; waited += 20) {
        if (count(s, kind) >= times) return 1;
        sleep_ms(20);
    }
    return count(s, kind) >= times;
}

/* The log callback: counts the loss being logged at WARN from the connection module. */
static atomic_int logged_loss;
static atomic_int logged_below_warn;

static void on_log(void *userdata, const oc2_log_params *p) {
    (void)userdata;
    if (p->level > OC2_LOG_WARN) atomic_fetch_add(&logged_below_warn, 1);
    if (p->level == OC2_LOG_WARN && p->target.data[p->target.len] == 0 &&
        strcmp(p->target.data, "oc2mqtt::client::connection") == 0 &&
        strncmp(p->message.data, "connection lost; reconnecting why=", 34) == 0)
        atomic_fetch_add(&logged_loss, 1);
}

static oc2_config *config(void) {
    oc2_config_builder *b = NULL;
    oc2_config *c = NULL;
    CHECK_RC(oc2_config_builder_new(url, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_set_connect_timeout(b, 5), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &c), OC2_RESULT_OK);
    oc2_config_builder_free(b);
    return c;
}

static void every_role_reports_loss_attempts_and_return(void) {
    CHECK_RC(oc2_log_set_callback(on_log, OC2_LOG_WARN, NULL), OC2_RESULT_OK);
    oc2_config *c = config();
    oc2_producer *producer = NULL;
    oc2_consumer *consumer = NULL;
    oc2_monitor *monitor = NULL;
    CHECK_RC(oc2_producer_connect(c, "ev-p", &producer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_connect(c, "ev-fw", NULL, 0, NULL, 0, &consumer), OC2_RESULT_OK);
    CHECK_RC(oc2_monitor_connect(c, NULL, &monitor), OC2_RESULT_OK);
    static seen s[3];
    CHECK_RC(oc2_producer_set_connection_callbacks(producer, on_connect, on_disconnect, &s[0]), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_set_connection_callbacks(consumer, on_connect, on_disconnect, &s[1]), OC2_RESULT_OK);
    CHECK_RC(oc2_monitor_set_connection_callbacks(monitor, on_connect, on_disconnect, &s[2]), OC2_RESULT_OK);
    /* Once per role. */
    CHECK_RC(oc2_producer_set_connection_callbacks(producer, on_connect, NULL, &s[0]), OC2_RESULT_INVALID_ARGUMENT);
    for (int i = 0; i < 3; i++) CHECK(wait_for(&s[i], 'C', 1, 10000)); /* the current state, at once */

    stop_broker();
    for (int i = 0; i < 3; i++) {
        CHECK(wait_for(&s[i], 'F', 1, 20000));
        CHECK(s[i].kinds[1] == 'L' && s[i].results[1] == OC2_RESULT_CONNECT);
        CHECK(s[i].lost_has_reason);
        CHECK(s[i].kinds[2] == 'F' && s[i].results[2] == OC2_RESULT_CONNECT && s[i].attempts[2] == 1);
        CHECK(s[i].first_failure_names_broker);
    }
    CHECK(atomic_load(&logged_loss) >= 3);
    CHECK(atomic_load(&logged_below_warn) == 0);

    CHECK(start_broker());
    for (int i = 0; i < 3; i++) {
        CHECK(wait_for(&s[i], 'C', 2, 40000));
        CHECK(s[i].connect_info_ok);
    }
    oc2_stats st;
    CHECK_RC(oc2_producer_stats(producer, &st), OC2_RESULT_OK);
    CHECK(st.reconnects >= 1);

    /* Freeing (or closing) delivers CLOSED last, and waits for it. */
    oc2_producer_free(producer);
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK);
    oc2_monitor_free(monitor);
    for (int i = 0; i < 3; i++) {
        int n = atomic_load(&s[i].n);
        CHECK(n > 0 && s[i].kinds[n - 1] == 'X' && s[i].results[n - 1] == OC2_RESULT_OK);
        CHECK(count(&s[i], 'X') == 1);
    }
    oc2_consumer_free(consumer);
    CHECK(count(&s[1], 'X') == 1);
    CHECK_RC(oc2_log_set_callback(NULL, OC2_LOG_WARN, NULL), OC2_RESULT_OK);
    oc2_config_free(c);
}

/* Only on_disconnect; a role already closed reports CLOSED at once. */
static void a_closed_role_reports_closed_at_once(void) {
    oc2_config *c = config();
    oc2_consumer *consumer = NULL;
    CHECK_RC(oc2_consumer_connect(c, "ev-closed", NULL, 0, NULL, 0, &consumer), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_close(consumer), OC2_RESULT_OK);
    static seen s;
    CHECK_RC(oc2_consumer_set_connection_callbacks(consumer, NULL, on_disconnect, &s), OC2_RESULT_OK);
    CHECK(wait_for(&s, 'X', 1, 5000));
    CHECK(atomic_load(&s.n) == 1);
    CHECK_RC(oc2_consumer_set_connection_callbacks(consumer, NULL, NULL, &s), OC2_RESULT_NULL_PARAMETER);
    oc2_consumer_free(consumer);
    oc2_config_free(c);
}

int main(void) {
    broker_py = getenv("OC2_TEST_BROKER_PY");
    if (!broker_py || !mkdtemp(broker_dir) || !start_broker()) {
        fprintf(stderr, "events: cannot start a broker (OC2_TEST_BROKER_PY=%s)\n", broker_py ? broker_py : "unset");
        return 2;
    }
    RUN(every_role_reports_loss_attempts_and_return);
    RUN(a_closed_role_reports_closed_at_once);
    stop_broker();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", broker_dir);
    CHECK(system(cmd) == 0);
    return TEST_SUMMARY("events");
}
