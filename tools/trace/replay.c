/* Replay runner (see replay.h): forks a child per run, loads simcuda there and feeds it the
 * trace's events through the chosen backend; the result comes back through a pipe. */
#include "tools/trace/replay.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uthash.h>

#include "tools/trace/replay_backend.h"

/* Traces with more events than this report progress. */
#define VS_REPLAY_PROGRESS_MIN 50000u

struct vs_replay_stream {
    uint64_t trace_stream;
    CUstream stream;
    UT_hash_handle hh;
};

const char *vs_replay_mode_name(enum vs_replay_mode mode)
{
    return mode == VS_REPLAY_ARENA ? "arena" : "pass-through";
}

double vs_replay_utilisation(const struct vs_replay_result *r)
{
    return r->peak_physical_bytes ? (double)r->peak_live_bytes / (double)r->peak_physical_bytes
                                  : 0.0;
}

/* The replay stream for a trace stream, created on first use (non-blocking, like the side
 * streams frameworks create). The legacy and per-thread default streams stay themselves. */
static CUresult vs_replay_stream(struct vs_simcuda *sim, struct vs_replay_stream **table,
                                 uint64_t trace_stream, CUstream *out)
{
    if (!trace_stream || (CUstream)(uintptr_t)trace_stream == CU_STREAM_LEGACY ||
        (CUstream)(uintptr_t)trace_stream == CU_STREAM_PER_THREAD) {
        *out = (CUstream)(uintptr_t)trace_stream;
        return CUDA_SUCCESS;
    }
    struct vs_replay_stream *s = NULL;
    HASH_FIND(hh, *table, &trace_stream, sizeof trace_stream, s);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = sim->cuStreamCreate(&s->stream, CU_STREAM_NON_BLOCKING);
        if (r != CUDA_SUCCESS) {
            free(s);
            return r;
        }
        s->trace_stream = trace_stream;
        HASH_ADD(hh, *table, trace_stream, sizeof s->trace_stream, s);
    }
    *out = s->stream;
    return CUDA_SUCCESS;
}

/* The stream an event names: 0 passed to a per-thread (_ptsz) entry point is the calling
 * thread's default stream, not the legacy one. */
static uint64_t vs_replay_trace_stream(const struct vs_tracefile_event *ev)
{
    static const char ptsz[] = "_ptsz";
    size_t n = ev->api ? strlen(ev->api) : 0;
    if (!ev->stream && n >= sizeof ptsz - 1 && !strcmp(ev->api + n - (sizeof ptsz - 1), ptsz))
        return (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
    return ev->stream;
}

static void vs_replay_progress(enum vs_replay_mode mode, size_t done, size_t total,
                               unsigned *shown)
{
    unsigned tenth = (unsigned)(done * 10 / total);
    if (tenth <= *shown)
        return;
    *shown = tenth;
    fprintf(stderr, "vramshim replay: %s %u%% (%zu/%zu events)\n", vs_replay_mode_name(mode),
            tenth * 10, done, total);
}

static void vs_replay_moves(const struct vs_replay_backend *be, void *state,
                            struct vs_replay_result *res)
{
    uint64_t host;
    if (!be->moves)
        return;
    be->moves(state, &res->demoted_bytes, &res->promoted_bytes, &host);
    if (host > res->peak_host_bytes)
        res->peak_host_bytes = host;
}

/* The child's work: everything up to the result, which the caller sends to the parent. */
static void vs_replay_child(const struct vs_tracefile *trace, enum vs_replay_mode mode,
                            bool progress, struct vs_replay_result *res)
{
    struct vs_simcuda sim;
    if (vs_simcuda_open(&sim, res->message, sizeof res->message))
        return;
    const struct vs_replay_backend *be =
        mode == VS_REPLAY_ARENA ? &vs_replay_arena_backend : &vs_replay_passthrough_backend;
    void *state;
    if (be->open(&sim, &state, res->message, sizeof res->message))
        return;
    CUdeviceptr *got = calloc(trace->n_events ? trace->n_events : 1, sizeof *got);
    if (!got) {
        snprintf(res->message, sizeof res->message, "out of memory");
        return;
    }
    struct vs_replay_stream *streams = NULL;
    uint64_t live = 0;
    unsigned shown = 0;
    bool freed = false;
    res->ran = true;
    res->fits = true;
    progress = progress && trace->n_events > VS_REPLAY_PROGRESS_MIN;
    for (size_t i = 0; i < trace->n_events; i++) {
        const struct vs_tracefile_event *ev = &trace->events[i];
        CUstream s;
        CUresult r = vs_replay_stream(&sim, &streams, vs_replay_trace_stream(ev), &s);
        if (ev->kind == VS_TF_ALLOC && freed) {
            be->settle(state);
            freed = false;
        }
        if (r == CUDA_SUCCESS && ev->kind == VS_TF_ALLOC)
            r = be->alloc(state, ev, s, &got[i]);
        else if (r == CUDA_SUCCESS)
            r = be->free(state, ev, s, got[ev->alloc]);
        freed = freed || ev->kind == VS_TF_FREE;
        if (r != CUDA_SUCCESS) {
            res->fits = false;
            res->failed = i;
            vs_simcuda_error_name(&sim, r, res->error, sizeof res->error);
            snprintf(res->message, sizeof res->message, "%s", be->last_log(state));
            break;
        }
        if (ev->kind == VS_TF_ALLOC) {
            live += ev->size;
            if (live > res->peak_live_bytes)
                res->peak_live_bytes = live;
            uint64_t phys = sim.physical_in_use(0);
            if (phys > res->peak_physical_bytes)
                res->peak_physical_bytes = phys;
        } else {
            live -= ev->size;
        }
        vs_replay_moves(be, state, res);
        if (progress)
            vs_replay_progress(mode, i + 1, trace->n_events, &shown);
    }
    vs_replay_moves(be, state, res); /* also what moved before a failing event */
    /* The child exits right after reporting: the driver's and arena's memory go with it. */
    struct vs_replay_stream *e, *tmp;
    HASH_ITER(hh, streams, e, tmp) {
        HASH_DEL(streams, e);
        free(e);
    }
    free(got);
}

void vs_replay_run(const struct vs_tracefile *trace, enum vs_replay_mode mode, uint64_t vram,
                   bool progress, struct vs_replay_result *out)
{
    memset(out, 0, sizeof *out);
    int fds[2];
    if (pipe(fds)) {
        snprintf(out->message, sizeof out->message, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out->message, sizeof out->message, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        char bytes[32];
        snprintf(bytes, sizeof bytes, "%" PRIu64, vram);
        setenv("SIMCUDA_VRAM", bytes, 1);
        struct vs_replay_result res = {0};
        vs_replay_child(trace, mode, progress, &res);
        ssize_t n = write(fds[1], &res, sizeof res);
        fflush(NULL);
        _exit(n == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(fds[0], (char *)out + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof *out) {
        memset(out, 0, sizeof *out);
        if (WIFSIGNALED(status))
            snprintf(out->message, sizeof out->message, "the %s replay died of signal %d (%s)",
                     vs_replay_mode_name(mode), WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(out->message, sizeof out->message,
                     "the %s replay exited with status %d before reporting",
                     vs_replay_mode_name(mode), WEXITSTATUS(status));
    }
}
