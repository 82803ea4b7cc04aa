/* Publishing to the per-GPU ledgers (see ledger_pub.h).
 *
 * Invariants: the ledger handles, `stopped` and the idle clock are read and written under `mu`
 * only (the publishing thread, the exit handler, vs_ledger_pub_idle); under `mu` only arena locks
 * are taken (usage walks). The exit handler sets `stopped` before removing the entries, so no
 * publish follows a removal.
 */
#include "interpose/ledger_pub.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "allocator/ledger.h"
#include "allocator/log.h"
#include "policy/policy.h"
#include "interpose/ctl_server.h"
#include "interpose/init.h"
#include "interpose/service_thread.h"

/* Devices published at most (ordinals 0..VS_PUB_DEVICES-1; a larger one is left out, logged). */
#define VS_PUB_DEVICES 16

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vs_ledger *ledgers[VS_PUB_DEVICES]; /* by ordinal, opened at its first publish */
static bool refused[VS_PUB_DEVICES];              /* its ledger was refused: not tried again */
static bool stopped;
static pid_t owner;
static int wake_fd = -1;
static atomic_uint_fast64_t pokes; /* stage changes, counted as activity */
static uint64_t last_activity, idle_since_ms;

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

bool vs_ledger_pub_device_uuid(int ordinal, char *buf, size_t len)
{
    CUdevice dev;
    CUuuid u;
    if (!vs_drv.cuDeviceGetUuid || vs_drv.cuDeviceGet(&dev, ordinal) != CUDA_SUCCESS ||
        vs_drv.cuDeviceGetUuid(&u, dev) != CUDA_SUCCESS) {
        vs_log(VS_LOG_WARN, "ledger: cannot read device %d's UUID; not published", ordinal);
        return false;
    }
    const unsigned char *b = (const unsigned char *)u.bytes;
    snprintf(buf, len,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return true;
}

/* The ledger of device `ordinal` (mu held), opened on first use; NULL when refused. */
static struct vs_ledger *ledger_of(int ordinal)
{
    if (ordinal < 0 || ordinal >= VS_PUB_DEVICES || refused[ordinal])
        return NULL;
    if (ledgers[ordinal])
        return ledgers[ordinal];
    char uuid[64], err[512];
    if (vs_ledger_pub_device_uuid(ordinal, uuid, sizeof uuid))
        ledgers[ordinal] = vs_ledger_open(NULL, uuid, 0, err, sizeof err);
    if (!ledgers[ordinal]) {
        refused[ordinal] = true;
        vs_log(VS_LOG_ERROR, "%s; device %d is not published",
               ordinal >= 0 ? err : "ledger: no device", ordinal);
    }
    return ledgers[ordinal];
}

static void add_activity(struct vs_arena *a, void *ctx)
{
    struct vs_arena_stats st;
    vs_arena_stats(a, &st);
    *(uint64_t *)ctx += st.allocs + st.frees;
}

/* Samples the activity counters (mu held): milliseconds since they last changed. */
static uint64_t sample_idle_ms(void)
{
    uint64_t activity = atomic_load_explicit(&pokes, memory_order_relaxed), now = now_ms();
    vs_arenas_each(add_activity, &activity);
    if (activity != last_activity) {
        last_activity = activity;
        idle_since_ms = now;
    }
    return now - idle_since_ms;
}

bool vs_ledger_pub_running(void)
{
    return wake_fd >= 0;
}

bool vs_ledger_pub_idle(uint64_t *idle_ms)
{
    if (wake_fd < 0)
        return false;
    pthread_mutex_lock(&mu);
    *idle_ms = sample_idle_ms();
    pthread_mutex_unlock(&mu);
    return true;
}

static void publish_arena(struct vs_arena *a, void *ctx)
{
    *(bool *)ctx = true;
    struct vs_arena_usage u;
    if (!vs_arena_usage(a, &u))
        return;
    struct vs_ledger *l = ledger_of(u.device);
    struct vs_ledger_entry e = {
        .live = u.arena.live_bytes,
        .cached = u.arena.cached_bytes,
        .demoted = u.demoted_bytes,
        .lendable = u.lendable_bytes,
    };
    vs_arena_usage_free(&u);
    if (!l)
        return;
    uint32_t stage = vs_arenas_stage();
    const char *name = stage ? vs_names_str(vs_evict_names(), stage) : NULL;
    const char *sock = vs_ctl_server_path();
    snprintf(e.stage, sizeof e.stage, "%s", name ? name : "");
    if (sock && strlen(sock) < sizeof e.socket)
        memcpy(e.socket, sock, strlen(sock) + 1);
    if (vs_ledger_publish(l, &e) != 0)
        vs_log(VS_LOG_WARN, "%s", vs_ledger_error(l));
}

static void *publish_loop(void *arg)
{
    (void)arg;
    vs_log_service_thread();
    idle_since_ms = now_ms();
    bool listed = false; /* an entry was published: the period is VS_LEDGER_PUB_PERIOD_MS */
    for (;;) {
        struct pollfd p = {.fd = wake_fd, .events = POLLIN};
        if (poll(&p, 1, listed ? VS_LEDGER_PUB_PERIOD_MS : VS_LEDGER_PUB_FIRST_MS) > 0) {
            uint64_t n;
            if (read(wake_fd, &n, sizeof n) < 0 && errno != EAGAIN)
                break;
        }
        pthread_mutex_lock(&mu);
        if (stopped) {
            pthread_mutex_unlock(&mu);
            break;
        }
        sample_idle_ms(); /* keeps the idle clock within a period */
        vs_arenas_each(publish_arena, &listed);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* At exit: no publish after this, the entries removed (each removal bounded by the lock
 * timeout). */
static void remove_entries(void)
{
    if (getpid() != owner)
        return;
    pthread_mutex_lock(&mu);
    stopped = true;
    for (int i = 0; i < VS_PUB_DEVICES; i++)
        if (ledgers[i] && vs_ledger_remove(ledgers[i]) != 0)
            vs_log(VS_LOG_WARN, "%s", vs_ledger_error(ledgers[i]));
    pthread_mutex_unlock(&mu);
}

/* The child has no publishing thread; its ledger is off. */
static void fork_child(void)
{
    stopped = true;
    close(wake_fd);
    wake_fd = -1; /* the child neither pokes the parent's thread nor borrows (borrow.h) */
}

/* VRAMSHIM_LEDGER: "1" on, "0" off, unset: on when the policy has a [lend] section. */
static bool ledger_wanted(const struct vs_policy *p)
{
    const char *v = getenv("VRAMSHIM_LEDGER");
    if (v && *v) {
        if (!strcmp(v, "0") || !strcmp(v, "1"))
            return v[0] == '1';
        vs_log(VS_LOG_ERROR, "VRAMSHIM_LEDGER=\"%s\" is not 0 or 1; the ledger stays off", v);
        return false;
    }
    return p && vs_policy_lend_rules(p)->line;
}

void vs_ledger_pub_start(const struct vs_policy *policy)
{
    if (vs_cfg.mode != VS_MODE_ARENA || !ledger_wanted(policy))
        return;
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) {
        vs_log(VS_LOG_ERROR, "ledger off: eventfd: %s", strerror(errno));
        return;
    }
    owner = getpid();
    if (!vs_service_thread_start(publish_loop, NULL, "ledger")) {
        close(wake_fd);
        wake_fd = -1;
        return;
    }
    atexit(remove_entries);
    pthread_atfork(NULL, NULL, fork_child);
}

void vs_ledger_pub_poke(void)
{
    if (wake_fd < 0)
        return;
    atomic_fetch_add_explicit(&pokes, 1, memory_order_relaxed);
    uint64_t one = 1;
    ssize_t w = write(wake_fd, &one, sizeof one); /* EAGAIN: a wake-up is pending anyway */
    (void)w;
}
