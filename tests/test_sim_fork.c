/* simcuda across fork(): a child forked while other threads are inside the driver never hangs,
 * memory mapped before the fork is shared with the parent while the child's own allocations are
 * private, and work queued before the fork stays the parent's. Every child arms alarm() so that a
 * deadlock shows up as a child killed by SIGALRM instead of a hung test. */
#include "test_sim_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 50
#define CHILD_TIMEOUT_S 10

/* Waits for a child and describes how it ended ("" when it exited with 0). */
static const char *child_outcome(pid_t pid, char *buf, size_t len)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        snprintf(buf, len, "waitpid failed");
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (deadlocked)" : "");
    else if (WEXITSTATUS(status) != 0)
        snprintf(buf, len, "failed check %d", WEXITSTATUS(status));
    else
        buf[0] = 0;
    return buf;
}

#define CHILD_CHECK(n, cond)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            _exit(n);                                                                              \
    } while (0)

/* ---- a busy driver --------------------------------------------------------------------------- */

struct hammer {
    CUcontext ctx;
    atomic_bool stop;
    atomic_ulong rounds;
    atomic_int errors;
};

static void noop_host_fn(void *data)
{
    (void)data;
}

#define H_OK(h, call)                                                                              \
    do {                                                                                           \
        if ((call) != CUDA_SUCCESS)                                                                \
            atomic_fetch_add(&(h)->errors, 1);                                                     \
    } while (0)

/* Every kind of lock the driver has: memory, scheduler (streams, events), contexts, counters. */
static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    static unsigned char host[1 << 20];
    H_OK(h, cuCtxSetCurrent(h->ctx));
    CUstream s;
    CUevent ev;
    H_OK(h, cuStreamCreate(&s, 0)); /* blocking: the legacy stream orders against it */
    H_OK(h, cuEventCreate(&ev, 0));
    while (!atomic_load(&h->stop)) {
        CUdeviceptr small, large, pooled;
        CUcontext primary;
        H_OK(h, cuMemAlloc_v2(&small, 4096));
        H_OK(h, cuMemAlloc_v2(&large, 2 * MiB));
        H_OK(h, cuMemcpyHtoDAsync_v2(large, host, sizeof host, s));
        H_OK(h, cuMemsetD8Async(small, 0x5a, 4096, s));
        H_OK(h, cuLaunchHostFunc(s, noop_host_fn, NULL));
        H_OK(h, cuMemAllocAsync(&pooled, 65536, s));
        H_OK(h, cuMemFreeAsync(pooled, s));
        H_OK(h, cuEventRecord(ev, s));
        H_OK(h, cuMemcpyDtoH_v2(host, small, 4096));
        H_OK(h, cuEventSynchronize(ev));
        H_OK(h, cuMemFree_v2(small));
        H_OK(h, cuMemFree_v2(large));
        H_OK(h, cuDevicePrimaryCtxRetain(&primary, 0));
        H_OK(h, cuDevicePrimaryCtxRelease_v2(0));
        simcuda_call_count("cuMemAlloc_v2");
        atomic_fetch_add(&h->rounds, 1);
    }
    H_OK(h, cuStreamSynchronize(s));
    H_OK(h, cuStreamDestroy_v2(s));
    H_OK(h, cuEventDestroy_v2(ev));
    return NULL;
}

/* What a child does: allocate, copy on the legacy stream (which orders after every blocking
 * stream), wait for the whole context, free. */
static void busy_child(void)
{
    alarm(CHILD_TIMEOUT_S);
    CUdeviceptr d;
    CUcontext primary;
    CHILD_CHECK(1, cuMemAlloc_v2(&d, 8192) == CUDA_SUCCESS);
    CHILD_CHECK(2, cuMemsetD8_v2(d, 7, 8192) == CUDA_SUCCESS);
    CHILD_CHECK(3, ((unsigned char *)d)[8191] == 7);
    CHILD_CHECK(4, cuCtxSynchronize() == CUDA_SUCCESS);
    CHILD_CHECK(5, cuMemFree_v2(d) == CUDA_SUCCESS);
    CHILD_CHECK(6, cuDevicePrimaryCtxRetain(&primary, 0) == CUDA_SUCCESS);
    CHILD_CHECK(7, simcuda_call_count("cuMemFree_v2") > 0);
    /* Memory that only the parent's vanished threads pointed to is unreachable here; exec (as a
     * child of a multithreaded process should) instead of exiting, so that valgrind's leak check
     * does not blame it on this child. */
    execl("/bin/true", "true", (char *)NULL);
    _exit(8);
}

Test(sim_fork, children_forked_while_another_thread_is_in_the_driver_never_hang)
{
    struct hammer h = {.ctx = sim_start()};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, hammer_thread, &h), 0);
    for (int i = 0; i < FORKS; i++) {
        while (atomic_load(&h.rounds) < (unsigned long)i)
            sched_yield();
        pid_t pid = fork();
        if (pid == 0)
            busy_child();
        cr_assert_geq(pid, 0, "fork failed");
        char why[64];
        cr_assert_str_empty(child_outcome(pid, why, sizeof why), "child %d of %d: %s", i + 1,
                            FORKS, why);
    }
    atomic_store(&h.stop, true);
    pthread_join(thread, NULL);
    cr_assert_eq(atomic_load(&h.errors), 0, "the parent's driver calls kept working");
}

/* ---- memory ---------------------------------------------------------------------------------- */

Test(sim_fork, memory_from_before_fork_is_shared_and_new_memory_is_private)
{
    sim_start();
    int go[2];
    cr_assert_eq(pipe(go), 0);
    CUdeviceptr before;
    CU_OK(cuMemAlloc_v2(&before, 2 * MiB));
    CU_OK(cuMemsetD8_v2(before, 'A', 2 * MiB));
    size_t in_use = simcuda_physical_in_use(0);

    pid_t pid = fork();
    if (pid == 0) {
        alarm(CHILD_TIMEOUT_S);
        char c;
        CHILD_CHECK(1, read(go[0], &c, 1) == 1); /* the parent allocated after the fork */
        CHILD_CHECK(2, ((unsigned char *)before)[0] == 'A');
        CUdeviceptr own;
        CHILD_CHECK(3, cuMemAlloc_v2(&own, 2 * MiB) == CUDA_SUCCESS);
        CHILD_CHECK(4, cuMemsetD8_v2(own, 'C', 2 * MiB) == CUDA_SUCCESS);
        CHILD_CHECK(5, ((unsigned char *)own)[2 * MiB - 1] == 'C');
        CHILD_CHECK(6, cuMemFree_v2(own) == CUDA_SUCCESS);
        ((unsigned char *)before)[1] = 'B'; /* a write the parent sees */
        CHILD_CHECK(7, cuMemFree_v2(before) == CUDA_SUCCESS);
        CHILD_CHECK(8, simcuda_physical_in_use(0) == in_use - 2 * MiB);
        _exit(0);
    }
    cr_assert_geq(pid, 0, "fork failed");
    CUdeviceptr after;
    CU_OK(cuMemAlloc_v2(&after, 2 * MiB));
    CU_OK(cuMemsetD8_v2(after, 'P', 2 * MiB));
    cr_assert_eq(write(go[1], "g", 1), 1);
    char why[64];
    cr_assert_str_empty(child_outcome(pid, why, sizeof why), "child: %s", why);

    const unsigned char *b = (const unsigned char *)before, *a = (const unsigned char *)after;
    cr_expect_eq(b[1], 'B', "the child's write to memory mapped before fork is shared");
    cr_expect_eq(b[0], 'A', "the child's cuMemFree_v2 left the parent's memory alone");
    cr_expect_eq(b[2 * MiB - 1], 'A');
    cr_expect_eq(a[0], 'P', "the child's allocation did not land on the parent's memory");
    cr_expect_eq(a[2 * MiB - 1], 'P');
    cr_expect_eq(simcuda_physical_in_use(0), in_use + 2 * MiB, "the child's frees were its own");
    close(go[0]);
    close(go[1]);
}

Test(sim_fork, the_child_never_allocates_from_pool_memory_shared_with_the_parent)
{
    sim_start();
    int go[2];
    cr_assert_eq(pipe(go), 0);
    CUstream s;
    CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUdeviceptr before;
    CU_OK(cuMemAllocAsync(&before, 65536, s));
    CU_OK(cuMemsetD8Async(before, 'A', 65536, s));
    CU_OK(cuStreamSynchronize(s));

    pid_t pid = fork();
    if (pid == 0) {
        alarm(CHILD_TIMEOUT_S);
        char c;
        CHILD_CHECK(1, read(go[0], &c, 1) == 1);
        CUdeviceptr own, again;
        /* The rest of the pool's chunk and, once freed, the parent's block are shared memory. */
        CHILD_CHECK(2, cuMemAllocAsync(&own, 65536, s) == CUDA_SUCCESS);
        CHILD_CHECK(3, cuMemFreeAsync(before, s) == CUDA_SUCCESS);
        CHILD_CHECK(4, cuMemAllocAsync(&again, 65536, s) == CUDA_SUCCESS);
        CHILD_CHECK(5, cuMemsetD8Async(own, 'C', 65536, s) == CUDA_SUCCESS);
        CHILD_CHECK(6, cuMemsetD8Async(again, 'C', 65536, s) == CUDA_SUCCESS);
        CHILD_CHECK(7, cuStreamSynchronize(s) == CUDA_SUCCESS);
        CHILD_CHECK(8, ((unsigned char *)own)[0] == 'C' && ((unsigned char *)again)[0] == 'C');
        _exit(0);
    }
    cr_assert_geq(pid, 0, "fork failed");
    CUdeviceptr after;
    CU_OK(cuMemAllocAsync(&after, 65536, s));
    CU_OK(cuMemsetD8Async(after, 'P', 65536, s));
    CU_OK(cuStreamSynchronize(s));
    cr_assert_eq(write(go[1], "g", 1), 1);
    char why[64];
    cr_assert_str_empty(child_outcome(pid, why, sizeof why), "child: %s", why);
    cr_expect_eq(((unsigned char *)before)[65535], 'A',
                 "the child did not reuse the parent's block");
    cr_expect_eq(((unsigned char *)after)[0], 'P', "the child did not carve the parent's chunk");
    close(go[0]);
    close(go[1]);
}

/* ---- streams --------------------------------------------------------------------------------- */

static int tag_fd; /* host functions write their one-letter tag here */

static void write_tag(void *data)
{
    if (write(tag_fd, data, 1) != 1)
        abort();
}

Test(sim_fork, work_queued_before_fork_stays_the_parents)
{
#ifdef __SANITIZE_ADDRESS__
    /* The child starts a stream worker; a new thread frees memory in pthread_getattr_np, and GCC
     * 12's ASan allocator has no fork handler: a lock another thread of the parent (criterion's
     * or the stream worker) held at fork stays held in the child, which then hangs about one run
     * in three. glibc's malloc, which make test uses, is fork-safe. */
    cr_skip_test("under ASan: its allocator is not fork-safe in a child that starts threads");
#endif
    sim_start();
    int tags[2];
    cr_assert_eq(pipe(tags), 0);
    tag_fd = tags[1];
    static char parent_tag[] = "p", child_tag[] = "c";
    CUstream s;
    CUevent ev;
    CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CU_OK(cuEventCreate(&ev, 0));
    cr_assert_eq(simcuda_hold_stream(s), 0);
    CU_OK(cuLaunchHostFunc(s, write_tag, parent_tag));
    CU_OK(cuEventRecord(ev, s));

    pid_t pid = fork();
    if (pid == 0) {
        alarm(CHILD_TIMEOUT_S);
        CHILD_CHECK(1, cuStreamQuery(s) == CUDA_SUCCESS);
        CHILD_CHECK(2, cuEventQuery(ev) == CUDA_SUCCESS);
        CHILD_CHECK(3, cuLaunchHostFunc(s, write_tag, child_tag) == CUDA_SUCCESS);
        CHILD_CHECK(4, cuStreamSynchronize(s) == CUDA_SUCCESS);
        CHILD_CHECK(5, cuCtxSynchronize() == CUDA_SUCCESS);
        _exit(0);
    }
    cr_assert_geq(pid, 0, "fork failed");
    char why[64];
    cr_assert_str_empty(child_outcome(pid, why, sizeof why), "child: %s", why);
    cr_assert_eq(cuEventQuery(ev), CUDA_ERROR_NOT_READY, "the parent's stream is still held");
    cr_assert_eq(simcuda_release_stream(s), 0);
    CU_OK(cuStreamSynchronize(s));
    close(tags[1]);
    char got[8] = "";
    cr_assert_eq(read(tags[0], got, sizeof got - 1), 2, "each host function ran once: %s", got);
    cr_assert_str_eq(got, "cp", "the child ran only its own host function, then the parent");
    close(tags[0]);
}
