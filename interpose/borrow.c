/* Borrowing (see borrow.h).
 *
 * Invariants: `one` is held for a whole negotiation and `active` counts the threads inside one
 * (read by lend.c); nothing else of the shim is locked meanwhile.
 */
#include "interpose/borrow.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "allocator/arenas.h"
#include "allocator/evict.h"
#include "allocator/ledger.h"
#include "allocator/log.h"
#include "common/size.h"
#include "interpose/borrow_reply.h"
#include "interpose/init.h"
#include "interpose/lend.h"
#include "interpose/ledger_pub.h"
#include "policy/policy.h"

static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
static atomic_int active;
static atomic_uint_fast64_t borrows, borrowed_bytes;

void vs_borrow_counters(uint64_t *n, uint64_t *released_bytes)
{
    *n = atomic_load_explicit(&borrows, memory_order_relaxed);
    *released_bytes = atomic_load_explicit(&borrowed_bytes, memory_order_relaxed);
}

bool vs_borrow_active(void)
{
    return atomic_load_explicit(&active, memory_order_relaxed) > 0;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The policy's [lend] wait, the default without a [lend] section. */
static uint64_t wait_ms(void)
{
    const struct vs_policy *p = vs_evict_policy();
    const struct vs_policy_lend *l = p ? vs_policy_lend_rules(p) : NULL;
    return l && l->line ? l->wait_ms : VS_POLICY_DEFAULT_WAIT_MS;
}

/* Waits for events on fd until deadline; false at the deadline or on a poll error. */
static bool wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left < 60000 ? left : 60000));
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* One `lend` request to the peer of entry e; *released gets what it gave back, `what` a short
 * account ("released 5.00 GiB", "refused: ...", "no reply within 30000 ms"). */
static void ask(const struct vs_ledger_entry *e, uint64_t bytes, long long deadline,
                uint64_t *released, char *what, size_t len)
{
    *released = 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t plen = strlen(e->socket);
    int fd = plen < sizeof addr.sun_path
                 ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)
                 : -1;
    if (fd < 0) {
        snprintf(what, len, "no usable control socket");
        return;
    }
    memcpy(addr.sun_path, e->socket, plen + 1);
    struct ucred cred;
    socklen_t clen = sizeof cred;
    char req[40], reply[VS_BORROW_REPLY_MAX];
    int k = snprintf(req, sizeof req, "lend %llu\n", (unsigned long long)bytes);
    size_t got = 0;
    const char *nl;
    if (connect(fd, (const struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(what, len, "cannot connect to %s: %s", e->socket, strerror(errno));
        goto out;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.pid != e->pid ||
        cred.uid != geteuid()) {
        snprintf(what, len, "its socket %s is not served by it: not asked", e->socket);
        goto out;
    }
    if (!wait_fd(fd, POLLOUT, deadline) || send(fd, req, (size_t)k, MSG_NOSIGNAL) != k) {
        snprintf(what, len, "cannot send the request");
        goto out;
    }
    while (!(nl = memchr(reply, '\n', got))) {
        ssize_t r = -1;
        errno = ETIMEDOUT;
        if (got < sizeof reply && wait_fd(fd, POLLIN, deadline))
            r = recv(fd, reply + got, sizeof reply - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR) && now_ms() < deadline)
            continue;
        if (got == sizeof reply)
            snprintf(what, len, "reply too long: ignored");
        else if (r == 0 || (r < 0 && errno == ECONNRESET))
            snprintf(what, len, "closed the connection without a reply");
        else if (errno == ETIMEDOUT || errno == EAGAIN || errno == EINTR)
            snprintf(what, len, "no reply in time");
        else
            snprintf(what, len, "receive failed: %s", strerror(errno));
        goto out;
    }
    *released = vs_borrow_reply(reply, (size_t)(nl - reply), what, len);
out:
    close(fd);
}

static int by_lendable_desc(const void *x, const void *y)
{
    const struct vs_ledger_entry *a = x, *b = y;
    return a->lendable < b->lendable ? 1 : a->lendable > b->lendable ? -1 : 0;
}

/* The lenders of device `ordinal` (not this process), largest lendable first, in *out
 * (malloc'ed); their count, or -1. */
static int lenders(int ordinal, struct vs_ledger_entry **out)
{
    char uuid[64], err[512] = "";
    struct vs_ledger *l = vs_ledger_pub_device_uuid(ordinal, uuid, sizeof uuid)
                              ? vs_ledger_open(NULL, uuid, 0, err, sizeof err)
                              : NULL;
    struct vs_ledger_entry *v = l ? malloc(VS_LEDGER_ENTRIES * sizeof *v) : NULL;
    int n = v ? vs_ledger_list(l, v, VS_LEDGER_ENTRIES) : -1;
    if (!l && err[0])
        vs_log(VS_LOG_WARN, "%s; not borrowing", err);
    else if (v && n < 0)
        vs_log(VS_LOG_WARN, "%s; not borrowing", vs_ledger_error(l));
    vs_ledger_close(l);
    int kept = 0;
    for (int i = 0; i < n && i < VS_LEDGER_ENTRIES; i++)
        if (v[i].pid != getpid() && v[i].lendable && v[i].socket[0])
            v[kept++] = v[i];
    if (n >= 0)
        qsort(v, (size_t)kept, sizeof *v, by_lendable_desc);
    *out = v;
    return n < 0 ? -1 : kept;
}

/* What one peer was asked during a negotiation and what it last answered. */
struct asked {
    int pid;
    uint64_t lendable, released;
    unsigned times;
    long long ms; /* spent on it, all requests */
    char what[256];
};

/* The record of pid in rec[0..*n), appended when new; NULL when VS_BORROW_RECORDS are in use. */
static struct asked *record_of(struct asked *rec, size_t *n, const struct vs_ledger_entry *e)
{
    for (size_t i = 0; i < *n; i++)
        if (rec[i].pid == e->pid)
            return &rec[i];
    if (*n == VS_BORROW_RECORDS)
        return NULL;
    rec[*n] = (struct asked){.pid = e->pid};
    return &rec[(*n)++];
}

/* One round: the lenders of the ledger, largest lendable first, at most VS_BORROW_PEERS, each
 * asked for what is still missing until `bytes` are released. Returns how many were asked. */
static int ask_round(int dev, uint64_t bytes, long long deadline, struct asked *rec, size_t *nrec,
                     uint64_t *total)
{
    struct vs_ledger_entry *v;
    int n = lenders(dev, &v), asked = 0;
    for (int i = 0; i < n && i < VS_BORROW_PEERS && *total < bytes && now_ms() < deadline; i++) {
        struct asked *a = record_of(rec, nrec, &v[i]), spare;
        a = a ? a : &spare;
        uint64_t got;
        long long t0 = now_ms();
        ask(&v[i], bytes - *total, deadline, &got, a->what, sizeof a->what);
        a->lendable = v[i].lendable;
        a->released += got;
        a->times++;
        a->ms += now_ms() - t0;
        *total += got;
        asked++;
    }
    free(v);
    return asked;
}

/* The negotiation for `bytes` on device `dev`; `need` says what they are for, in its line. */
static bool borrow_on(int dev, uint64_t bytes, const char *need)
{
    uint64_t wait = wait_ms();
    if (!wait || !vs_ledger_pub_running() || vs_lend_serving())
        return false;
    long long start = now_ms(), deadline = start + (long long)wait;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(wait / 1000);
    until.tv_nsec += (long)(wait % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    if (pthread_mutex_timedlock(&one, &until) != 0)
        return false;
    atomic_fetch_add_explicit(&active, 1, memory_order_relaxed);
    struct asked rec[VS_BORROW_RECORDS];
    size_t nrec = 0;
    uint64_t total = 0;
    /* Lenders that are busy now (not idle for their idle_after) may lend later: ask again every
     * VS_BORROW_POLL_MS until one releases memory or the wait is over. */
    for (;;) {
        int asked = ask_round(dev, bytes, deadline, rec, &nrec, &total);
        long long left = deadline - now_ms();
        if (!asked || total || left <= 0)
            break;
        poll(NULL, 0, (int)(left < VS_BORROW_POLL_MS ? left : VS_BORROW_POLL_MS));
    }
    atomic_fetch_add_explicit(&borrows, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&borrowed_bytes, total, memory_order_relaxed);
    atomic_fetch_sub_explicit(&active, 1, memory_order_relaxed);
    pthread_mutex_unlock(&one);

    char line[1536], lsize[32];
    size_t used = (size_t)snprintf(line, sizeof line, "borrow: %s on device %d, waited %lld ms:",
                                   need, dev, now_ms() - start);
    for (size_t i = 0; i < nrec && used < sizeof line; i++)
        used += (size_t)snprintf(line + used, sizeof line - used,
                                 "%s asked pid %d (lendable %s) %u time%s in %lld ms: %s",
                                 i ? ";" : "", rec[i].pid,
                                 vs_size_format(rec[i].lendable, lsize, sizeof lsize),
                                 rec[i].times, rec[i].times == 1 ? "" : "s", rec[i].ms,
                                 rec[i].what);
    if (!nrec && used < sizeof line)
        snprintf(line + used, sizeof line - used, " no peer on this GPU lends memory");
    vs_log(nrec ? VS_LOG_WARN : VS_LOG_INFO, "%s%s", line, nrec ? "; retrying" : "");
    return nrec > 0;
}

bool vs_borrow(uint64_t bytes)
{
    CUdevice dev;
    if (vs_drv.cuCtxGetDevice(&dev) != CUDA_SUCCESS)
        return false;
    char need[64], size[32];
    snprintf(need, sizeof need, "out of memory for %s", vs_size_format(bytes, size, sizeof size));
    return borrow_on((int)dev, bytes, need);
}

struct headroom {
    uint32_t name;
    size_t bytes;
};

static void headroom_of(struct vs_arena *a, void *ctx)
{
    const struct headroom *h = ctx;
    int dev;
    size_t lack = vs_arena_headroom_short(a, h->bytes, &dev);
    if (!lack)
        return;
    const char *name = vs_names_str(vs_evict_names(), h->name);
    char need[160], size[32], short_by[32];
    snprintf(need, sizeof need, "headroom %s of %s short by %s",
             vs_size_format(h->bytes, size, sizeof size), name ? name : "?",
             vs_size_format(lack, short_by, sizeof short_by));
    if (borrow_on(dev, lack, need) && (lack = vs_arena_headroom_short(a, h->bytes, &dev)))
        vs_log(VS_LOG_WARN, "borrow: headroom of %s still short by %s after the lenders",
               name ? name : "?", vs_size_format(lack, short_by, sizeof short_by));
}

void vs_borrow_headroom(uint32_t name)
{
    const struct vs_policy *pol = vs_evict_policy();
    const struct vs_policy_rule *r = pol ? vs_policy_rule_of(pol, name) : NULL;
    if (!r || !r->has_headroom)
        return;
    struct headroom h = {name, (size_t)r->headroom};
    vs_arenas_each(headroom_of, &h);
}
