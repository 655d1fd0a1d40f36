/* A C consumer killed in the middle of its work (as cli/tests/crash.rs): a
 * stable client id and a journal (oc2_consumer_options_set_journal),
 * handlers taking 0.5 s, SIGKILLed while 600 commands stream in at about
 * 100 a second, and started again. Every command runs, every exchange
 * completes, and none runs twice but those the journal held as taken and not
 * answered at the kill (`oc2mqtt journal --json`, the CLI in OC2_TEST_CLI):
 * a handler that ran and was killed before its answer was journaled runs
 * again, at least once as documented; one answered before the kill never.
 *
 * `crash` is the test: it starts `crash consumer URL DIR` (this program
 * again) as the consumer, whose handlers write the request_id of each
 * command they ran on stdout (after a first line `ready`), and counts them. `crash --no-journal` starts
 * the consumer without the journal (and then fails: commands are lost).
 *
 * Environment: OC2_TEST_BROKER (mqtt://127.0.0.1:PORT of a broker started
 * by tests/broker/broker.py). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

#define COMMANDS 600
#define KILL_AT 250
#define RESTART_AT 350

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

/* ---- the consumer process ---- */

struct job {
    const oc2_consumer *consumer;
    oc2_command *command;
};

/* The handler: 0.5 s of work, the request_id out (one write of one line,
 * whole in a pipe), then the answer. */
static void *work(void *arg) {
    struct job *job = arg;
    sleep_ms(500);
    const oc2_message *m = NULL;
    oc2_str id = {0};
    if (oc2_command_message(job->command, &m) == OC2_RESULT_OK && oc2_message_request_id(m, &id) == OC2_RESULT_OK) {
        char line[256];
        int n = snprintf(line, sizeof line, "%.*s\n", (int)id.len, id.data);
        if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) != n) abort();
    }
    if (oc2_consumer_reply_status(job->consumer, job->command, 200, NULL) != OC2_RESULT_OK) abort();
    oc2_command_free(job->command);
    free(job);
    return NULL;
}

/* Each command gets a thread of its own: the callback takes the next one at once. */
static void on_command(void *userdata, const oc2_consumer *consumer, oc2_command *command) {
    (void)userdata;
    struct job *job = malloc(sizeof *job);
    if (job == NULL) abort();
    job->consumer = consumer;
    job->command = command;
    pthread_t t;
    if (pthread_create(&t, NULL, work, job) != 0) abort();
    pthread_detach(t);
}

static int consume(const char *url, const char *dir, int journal) {
    char path[PATH_MAX];
    oc2_config_builder *b = NULL;
    oc2_config *config = NULL;
    oc2_consumer_options *options = NULL;
    oc2_consumer *consumer = NULL;
    snprintf(path, sizeof path, "%s/client-id", dir);
    if (oc2_config_builder_new(url, &b) != OC2_RESULT_OK || oc2_config_builder_set_client_id_file(b, path) != OC2_RESULT_OK ||
        oc2_config_builder_build(b, &config) != OC2_RESULT_OK)
        return 1;
    oc2_config_builder_free(b);
    int n = snprintf(path, sizeof path, "%s/journal", dir);
    if (oc2_consumer_options_new("fw-1", &options) != OC2_RESULT_OK ||
        (journal && oc2_consumer_options_set_journal(options, path, (size_t)n) != OC2_RESULT_OK))
        return 1;
    if (oc2_consumer_connect_with(config, options, &consumer) != OC2_RESULT_OK) {
        char why[512];
        oc2_config_last_error(config, why, sizeof why, NULL);
        fprintf(stderr, "consumer: %s\n", why);
        return 1;
    }
    /* Said before any request_id: the first line of stdout. */
    if (write(STDOUT_FILENO, "ready\n", 6) != 6) return 1;
    if (oc2_consumer_serve(consumer, on_command, NULL) != OC2_RESULT_OK) return 1;
    for (;;) pause(); /* until SIGKILL */
}

/* ---- the test ---- */

/* The request_ids the consumers ran, one per line of their stdout. */
static struct {
    pthread_mutex_t lock;
    char **ids;
    size_t n, cap;
} runs = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

struct serving {
    pid_t pid;
    FILE *out;
    pthread_t reader;
};

static void *read_runs(void *arg) {
    struct serving *s = arg;
    char line[256];
    while (fgets(line, sizeof line, s->out) != NULL) {
        line[strcspn(line, "\n")] = 0;
        pthread_mutex_lock(&runs.lock);
        if (runs.n == runs.cap) {
            runs.cap = runs.cap ? runs.cap * 2 : 1024;
            runs.ids = realloc(runs.ids, runs.cap * sizeof *runs.ids);
            if (runs.ids == NULL) abort();
        }
        runs.ids[runs.n++] = strdup(line);
        pthread_mutex_unlock(&runs.lock);
    }
    return NULL;
}

static size_t runs_so_far(void) {
    pthread_mutex_lock(&runs.lock);
    size_t n = runs.n;
    pthread_mutex_unlock(&runs.lock);
    return n;
}

/* Starts `self consumer URL DIR` (its stderr is ours) and returns once it said ready. */
static int start_consumer(struct serving *s, const char *self, const char *url, const char *dir, int journal) {
    int out[2];
    if (pipe(out) != 0) return -1;
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        close(out[0]), close(out[1]);
        execl(self, self, "consumer", url, dir, journal ? "journal" : "no-journal", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    s->out = fdopen(out[0], "r");
    char line[64];
    if (s->out == NULL || fgets(line, sizeof line, s->out) == NULL || strcmp(line, "ready\n") != 0) {
        fprintf(stderr, "the consumer ended before it was ready\n");
        return -1;
    }
    return pthread_create(&s->reader, NULL, read_runs, s) == 0 ? 0 : -1;
}

static void kill_consumer(struct serving *s) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    pthread_join(s->reader, NULL);
    fclose(s->out);
}

static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The request_ids the journal in `dir` holds as taken and not answered (run
 * again on restart), sorted, from `oc2mqtt journal --json`; NULL if the CLI
 * could not read it. */
static struct {
    char **ids;
    size_t n;
} taken_at_kill;

static int read_taken(const char *dir) {
    const char *cli = getenv("OC2_TEST_CLI");
    if (cli == NULL || cli[0] == 0) return -1;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' journal --json '%s/journal'", cli, dir);
    FILE *out = popen(cmd, "r");
    if (out == NULL) return -1;
    char line[4096];
    const char *key = "\"request_id\":\"";
    while (fgets(line, sizeof line, out) != NULL) {
        char *id = strstr(line, key);
        if (strstr(line, "\"state\":\"run_again\"") == NULL || id == NULL) continue;
        id += strlen(key);
        id[strcspn(id, "\"")] = 0;
        taken_at_kill.ids = realloc(taken_at_kill.ids, (taken_at_kill.n + 1) * sizeof *taken_at_kill.ids);
        if (taken_at_kill.ids == NULL) abort();
        taken_at_kill.ids[taken_at_kill.n++] = strdup(id);
    }
    qsort(taken_at_kill.ids, taken_at_kill.n, sizeof *taken_at_kill.ids, by_text);
    return pclose(out) == 0 ? 0 : -1;
}

static const char *self, *broker;
static int with_journal = 1;

static void a_consumer_killed_mid_stream_and_started_again_loses_nothing_and_runs_nothing_twice(void) {
    char dir[] = "/tmp/oc2-c-crash.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct serving consumer;
    CHECK(start_consumer(&consumer, self, broker, dir, with_journal) == 0);
    oc2_config_builder *b = NULL;
    oc2_config *config = NULL;
    oc2_producer *producer = NULL;
    CHECK_RC(oc2_config_builder_new(broker, &b), OC2_RESULT_OK);
    CHECK_RC(oc2_config_builder_build(b, &config), OC2_RESULT_OK);
    oc2_config_builder_free(b);
    CHECK_RC(oc2_producer_connect(config, "p1", &producer), OC2_RESULT_OK);
    static oc2_exchange *exchanges[COMMANDS];
    const char *to[] = {"fw-1"};
    size_t killed_after = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < COMMANDS; i++) {
        char cmd[128];
        int n = snprintf(cmd, sizeof cmd, "{\"action\":\"deny\",\"target\":{\"ipv4_net\":\"10.0.%d.%d/32\"}}", i / 250,
                         i % 250);
        CHECK_RC(oc2_producer_send(producer, cmd, (size_t)n, to, 1, 30000, &exchanges[i]), OC2_RESULT_OK);
        sleep_ms(10);
        if (i == KILL_AT) {
            kill_consumer(&consumer);
            killed_after = runs_so_far();
            if (with_journal) {
                CHECK(read_taken(dir) == 0);
                CHECK(taken_at_kill.n > 0);
            }
        }
        if (i == RESTART_AT) {
            /* Started again while commands keep coming (its session kept them). */
            CHECK(start_consumer(&consumer, self, broker, dir, with_journal) == 0);
        }
    }
    int incomplete = 0;
    for (int i = 0; i < COMMANDS; i++) {
        bool complete = false;
        oc2_exchange_wait(exchanges[i]);
        CHECK_RC(oc2_exchange_is_complete(exchanges[i], &complete), OC2_RESULT_OK);
        incomplete += !complete;
    }
    kill_consumer(&consumer);
    /* Sorted, a duplicate is next to its twin, and each request_id can be looked up. */
    qsort(runs.ids, runs.n, sizeof *runs.ids, by_text);
    size_t twice = 0, missing = 0, answered_twice = 0;
    for (size_t i = 1; i < runs.n; i++) {
        if (strcmp(runs.ids[i - 1], runs.ids[i]) != 0) continue;
        twice++;
        answered_twice +=
            bsearch(&runs.ids[i], taken_at_kill.ids, taken_at_kill.n, sizeof *taken_at_kill.ids, by_text) == NULL;
    }
    for (int i = 0; i < COMMANDS; i++) {
        oc2_str id = {0};
        CHECK_RC(oc2_exchange_request_id(exchanges[i], &id), OC2_RESULT_OK);
        char *key = strndup(id.data, id.len);
        missing += bsearch(&key, runs.ids, runs.n, sizeof *runs.ids, by_text) == NULL;
        free(key);
        oc2_exchange_free(exchanges[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("crash: %d commands, consumer killed after %zu had run; %zu runs in all, %zu twice (%zu of them answered "
           "before the kill; %zu taken and not answered then), %zu never ran, %d exchanges incomplete, %.1f s\n",
           COMMANDS, killed_after, runs.n, twice, answered_twice, taken_at_kill.n, missing, incomplete,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    CHECK(answered_twice == 0);
    CHECK(missing == 0);
    CHECK(runs.n == COMMANDS + twice);
    CHECK(incomplete == 0);
    oc2_producer_free(producer);
    oc2_config_free(config);
    for (size_t i = 0; i < runs.n; i++) free(runs.ids[i]);
    free(runs.ids);
    for (size_t i = 0; i < taken_at_kill.n; i++) free(taken_at_kill.ids[i]);
    free(taken_at_kill.ids);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/journal", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/client-id", dir);
    unlink(path);
    rmdir(dir);
}

static void set_journal_checks_its_arguments(void) {
    oc2_consumer_options *o = NULL;
    CHECK_RC(oc2_consumer_options_new("fw-1", &o), OC2_RESULT_OK);
    CHECK_RC(oc2_consumer_options_set_journal(o, NULL, 0), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_options_set_journal(o, "j", 0), OC2_RESULT_INVALID_ARGUMENT);
    CHECK_RC(oc2_consumer_options_set_journal(o, NULL, 4), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set_journal(NULL, "j", 1), OC2_RESULT_NULL_PARAMETER);
    CHECK_RC(oc2_consumer_options_set_journal(o, "/tmp/journal-not-NUL-terminated", 12), OC2_RESULT_OK);
    oc2_consumer_options_free(o);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "consumer") == 0) return consume(argv[2], argv[3], strcmp(argv[4], "journal") == 0);
    self = argv[0];
    with_journal = !(argc == 2 && strcmp(argv[1], "--no-journal") == 0);
    broker = getenv("OC2_TEST_BROKER");
    if (broker == NULL) {
        fprintf(stderr, "OC2_TEST_BROKER is not set: run through tests/with_broker.sh\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    RUN(set_journal_checks_its_arguments);
    RUN(a_consumer_killed_mid_stream_and_started_again_loses_nothing_and_runs_nothing_twice);
    return TEST_SUMMARY("crash");
}
