/* The trace's queue, background writer thread, file and fork handling (format in trace.h).
 *
 * Invariants:
 * - Producers hold q_lock only to copy a record into the tail chunk (a malloc when a chunk
 *   fills): record order in the queue is the file's line order, and times are taken under the
 *   lock, so t never decreases and a site line precedes every event naming it.
 * - Only the holder of io_lock formats and writes; it takes q_lock after io_lock (never the
 *   other way), so batches reach the file in queue order.
 * - open_lock serialises opening the file; emitters wait on it only until the file is open.
 * - gen numbers the trace file of this process image: 1 in the original process, +1 in each
 *   forked child, which writes PATH.<pid>. Sites record the gen whose file has their line.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "allocator/arenas.h"
#include "allocator/log.h"
#include "allocator/trace_internal.h"
#include "policy/file.h"

#define CHUNK_RECS 256
#define OUT_BYTES (256 * 1024)
#define BATCH_WAIT_NS (20 * 1000 * 1000)

struct chunk {
    struct chunk *next;
    unsigned n;
    struct vs_trace_rec rec[CHUNK_RECS];
};

enum file_state { FILE_CLOSED, FILE_OPEN, FILE_FAILED };

/* Configuration, fixed after vs_trace_configure. */
static char *base_path;
static bool to_fifo; /* VRAMSHIM_TRACE=fifo:PATH: PATH may be a FIFO or a device */
static bool with_stacks;
static const struct vs_driver *driver;
atomic_bool vs_trace_on;

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic enum file_state state = FILE_CLOSED;
static uint32_t gen = 1;

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct chunk *head, *tail;
static bool chunk_full, writer_idle, stop, writer_running;
static pthread_t writer;
static unsigned long dropped;

static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static int fd = -1;
static char out[OUT_BYTES];
static size_t out_len;
static bool write_failed;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- writing (io_lock held) ---------------------------------------------------------------- */

static void out_flush(void)
{
    size_t done = 0;
    while (done < out_len && !write_failed) {
        ssize_t w = write(fd, out + done, out_len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            write_failed = true;
            vs_log(VS_LOG_ERROR, "cannot write the trace %s: %s; tracing stops", base_path,
                   strerror(w < 0 ? errno : EIO));
            break;
        }
        done += (size_t)w;
    }
    out_len = 0;
}

static void write_rec(const struct vs_trace_rec *rec)
{
    size_t n = vs_trace_format(rec, out + out_len, OUT_BYTES - out_len);
    if (!n) {
        out_flush();
        n = vs_trace_format(rec, out, OUT_BYTES);
    }
    out_len += n;
    if (rec->kind == VS_REC_HEADER)
        free(rec->u.header);
}

static void write_batch(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        for (unsigned i = 0; i < c->n; i++)
            write_rec(&c->rec[i]);
        free(c);
        c = next;
    }
    out_flush();
}

static struct chunk *detach(void)
{
    struct chunk *batch = head;
    head = tail = NULL;
    chunk_full = false;
    return batch;
}

/* Writes everything queued so far, in order. */
static void drain(void)
{
    pthread_mutex_lock(&io_lock);
    pthread_mutex_lock(&q_lock);
    struct chunk *batch = detach();
    pthread_mutex_unlock(&q_lock);
    write_batch(batch);
    pthread_mutex_unlock(&io_lock);
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q_lock);
    while (!stop) {
        if (!head) {
            writer_idle = true;
            pthread_cond_wait(&q_cond, &q_lock);
            writer_idle = false;
            continue;
        }
        if (!chunk_full) {
            /* Let a burst accumulate into one write. */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += BATCH_WAIT_NS;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&q_cond, &q_lock, &until);
        }
        pthread_mutex_unlock(&q_lock);
        drain();
        pthread_mutex_lock(&q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    drain();
    return NULL;
}

/* --- queue (q_lock held) --------------------------------------------------------------------- */

static struct vs_trace_rec *append(void)
{
    if (!tail || tail->n == CHUNK_RECS) {
        struct chunk *c = malloc(sizeof *c);
        if (!c) {
            dropped++;
            return NULL;
        }
        c->next = NULL;
        c->n = 0;
        if (tail)
            tail->next = c;
        else
            head = c;
        tail = c;
    }
    struct vs_trace_rec *r = &tail->rec[tail->n++];
    if (tail->n == CHUNK_RECS)
        chunk_full = true;
    return r;
}

/* --- file ------------------------------------------------------------------------------------ */

static void start_writer(void)
{
    sigset_t all, old;
    sigfillset(&all);
    /* The writer must never run the program's signal handlers. */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    stop = false;
    writer_running = pthread_create(&writer, NULL, writer_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Opens the trace output without ever blocking the calling (host) thread: a regular file,
 * created or truncated; with VRAMSHIM_TRACE=fifo:PATH also a FIFO whose reader already runs,
 * or a device. Anything else is refused. Returns the descriptor, or -1 after saying why. */
static int open_output(const char *path)
{
    struct stat st;
    if (!stat(path, &st) && !S_ISREG(st.st_mode) && (!to_fifo || S_ISDIR(st.st_mode))) {
        if (S_ISDIR(st.st_mode))
            vs_log(VS_LOG_ERROR, "the trace path %s is a directory; tracing is off", path);
        else
            vs_log(VS_LOG_ERROR,
                   "the trace path %s is %s, not a regular file; tracing is off "
                   "(VRAMSHIM_TRACE=fifo:%s writes into it while its reader runs)",
                   path, vs_file_kind(st.st_mode), path);
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader. */
    int f = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    if (f < 0) {
        if (errno == ENXIO)
            vs_log(VS_LOG_ERROR,
                   "no process reads the FIFO %s (start its reader first); tracing is off", path);
        else
            vs_log(VS_LOG_ERROR, "cannot open the trace file %s: %s; tracing is off", path,
                   strerror(errno));
        return -1;
    }
    /* The path may have changed kind since the stat. */
    bool regular = !fstat(f, &st) && S_ISREG(st.st_mode);
    if ((!regular && !to_fifo) || (regular && ftruncate(f, 0)) ||
        fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK)) {
        vs_log(VS_LOG_ERROR, "cannot use the trace path %s: %s; tracing is off", path,
               regular || to_fifo ? strerror(errno) : "not a regular file");
        close(f);
        return -1;
    }
    return f;
}

/* Opens this process's trace file and queues its header; false when tracing is off. */
static bool open_file(const struct vs_driver *drv)
{
    pthread_mutex_lock(&open_lock);
    enum file_state s = atomic_load(&state);
    if (s == FILE_CLOSED) {
        char path[4096];
        if (gen == 1)
            snprintf(path, sizeof path, "%s", base_path);
        else
            snprintf(path, sizeof path, "%s.%d", base_path, (int)getpid());
        int f = open_output(path);
        char *header = f >= 0 ? vs_trace_header(drv, (int)getpid(), (int)getppid()) : NULL;
        if (f >= 0 && !header) {
            vs_log(VS_LOG_ERROR, "out of memory writing the trace header of %s; tracing is off",
                   path);
            close(f);
            f = -1;
        }
        if (f < 0) {
            atomic_store(&vs_trace_on, false);
            s = FILE_FAILED;
        } else {
            pthread_mutex_lock(&io_lock);
            fd = f;
            write_failed = false;
            pthread_mutex_unlock(&io_lock);
            pthread_mutex_lock(&q_lock);
            struct vs_trace_rec *r = append();
            if (r) {
                r->kind = VS_REC_HEADER;
                r->u.header = header;
            } else {
                free(header);
            }
            pthread_mutex_unlock(&q_lock);
            start_writer();
            s = FILE_OPEN;
        }
        atomic_store_explicit(&state, s, memory_order_release);
    }
    pthread_mutex_unlock(&open_lock);
    return s == FILE_OPEN;
}

/* --- API ------------------------------------------------------------------------------------- */

void vs_trace_configure(const char *path, bool stacks, const struct vs_driver *drv)
{
    to_fifo = !strncmp(path, "fifo:", 5);
    base_path = strdup(to_fifo ? path + 5 : path);
    if (!base_path)
        return;
    with_stacks = stacks;
    driver = drv;
    atomic_store(&vs_trace_on, true);
}

void vs_trace_emit(const struct vs_trace_event *e)
{
    if (vs_trace_enabled())
        vs_trace_emit_at(e, with_stacks ? vs_site_capture() : NULL);
}

void vs_trace_emit_at(const struct vs_trace_event *e, struct vs_site *site)
{
    if (!vs_trace_enabled())
        return;
    if (atomic_load_explicit(&state, memory_order_acquire) != FILE_OPEN && !open_file(driver))
        return;
    if (!with_stacks)
        site = NULL;

    size_t reserved = 0;
    bool has_reserved = e->dev >= 0 && vs_arenas_reserved(e->dev, &reserved);

    pthread_mutex_lock(&q_lock);
    if (site && site->written_gen != gen) {
        struct vs_trace_rec *r = append();
        if (r) {
            r->kind = VS_REC_SITE;
            r->u.s = site;
            site->written_gen = gen;
        }
    }
    struct vs_trace_rec *r = append();
    if (r) {
        r->kind = VS_REC_EVENT;
        r->t = now_ns();
        r->site = site && site->written_gen == gen ? site->id : 0;
        r->u.ev = *e;
        r->u.ev.has_reserved = has_reserved;
        r->u.ev.reserved = reserved;
    }
    bool wake = (chunk_full || writer_idle) && writer_running;
    if (wake)
        writer_idle = false;
    bool direct = !writer_running;
    pthread_mutex_unlock(&q_lock);

    if (wake)
        pthread_cond_signal(&q_cond);
    if (direct)
        drain();
}

void vs_trace_shutdown(void)
{
    if (!base_path)
        return;
    /* A program that never allocated still gets its header (no driver calls at exit). */
    if (atomic_load(&state) == FILE_CLOSED && vs_trace_enabled())
        open_file(NULL);
    pthread_mutex_lock(&q_lock);
    bool running = writer_running;
    stop = true;
    pthread_mutex_unlock(&q_lock);
    if (running) {
        pthread_cond_signal(&q_cond);
        pthread_join(writer, NULL);
        pthread_mutex_lock(&q_lock);
        writer_running = false;
        pthread_mutex_unlock(&q_lock);
    }
    drain();
    if (dropped)
        vs_log(VS_LOG_ERROR, "out of memory queueing trace events; %lu were dropped", dropped);
}

void vs_trace_fork_prepare(void)
{
    pthread_mutex_lock(&open_lock);
    pthread_mutex_lock(&io_lock);
    pthread_mutex_lock(&q_lock);
    /* The parent's file gets everything before the fork; the child starts empty. */
    write_batch(detach());
    vs_site_fork_prepare();
}

void vs_trace_fork_parent(void)
{
    vs_site_fork_release();
    pthread_mutex_unlock(&q_lock);
    pthread_mutex_unlock(&io_lock);
    pthread_mutex_unlock(&open_lock);
}

void vs_trace_fork_child(void)
{
    vs_site_fork_release();
    /* The writer thread does not exist here; the child opens PATH.<pid> at its first event. */
    if (fd >= 0)
        close(fd);
    fd = -1;
    gen++;
    if (atomic_load(&state) == FILE_OPEN)
        atomic_store(&state, FILE_CLOSED);
    writer_running = false;
    writer_idle = false;
    stop = false;
    pthread_cond_init(&q_cond, NULL);
    pthread_mutex_unlock(&q_lock);
    pthread_mutex_unlock(&io_lock);
    pthread_mutex_unlock(&open_lock);
}
