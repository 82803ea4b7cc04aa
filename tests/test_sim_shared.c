/* simcuda's shared device (SIMCUDA_SHARED): the test process and peer processes
 * (tests/progs/sim_shared_peer_linked, driven over pipes) draw from one capacity. Each sees the
 * others' allocations in cuMemGetInfo and fails on memory they hold; memory freed, or held by a
 * process that exited or was killed, is back for everyone. A segment that is not trustworthy is
 * refused with one line. Every test arms alarm() so a hung peer fails the test. */
#include "test_sim_common.h"

#include <criterion/redirect.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define VRAM (64 * MiB)
#define OOM_REPLY "err 2" /* CUDA_ERROR_OUT_OF_MEMORY */

static char shm_name[96]; /* "/simcuda-UID-NAME" */
static char name[64];

static void shared_setup(void)
{
    alarm(60);
    snprintf(name, sizeof name, "t%d", (int)getpid());
    snprintf(shm_name, sizeof shm_name, "/simcuda-%u-%s", (unsigned)geteuid(), name);
    setenv("SIMCUDA_SHARED", name, 1);
    setenv("SIMCUDA_VRAM", "64MiB", 1);
    setenv("LD_LIBRARY_PATH", VS_BUILD_DIR "/sim", 1);
}

static void shared_teardown(void)
{
    shm_unlink(shm_name);
}

TestSuite(sim_shared, .init = shared_setup, .fini = shared_teardown);

struct peer {
    pid_t pid;
    FILE *to, *from;
};

static void peer_read(struct peer *p, char *reply, size_t len)
{
    cr_assert_not_null(fgets(reply, (int)len, p->from), "peer %d closed its output", (int)p->pid);
    reply[strcspn(reply, "\n")] = 0;
}

static void peer_start(struct peer *p)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {VS_BUILD_DIR "/tests/progs/sim_shared_peer_linked", NULL};
    cr_assert_eq(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    setvbuf(p->to, NULL, _IOLBF, 0);
    char reply[128];
    peer_read(p, reply, sizeof reply);
    cr_assert_str_eq(reply, "ready");
}

/* Sends one command and checks the reply. */
static void peer_expect(struct peer *p, const char *cmd, const char *want)
{
    char reply[128];
    fprintf(p->to, "%s\n", cmd);
    peer_read(p, reply, sizeof reply);
    cr_assert_str_eq(reply, want, "peer %d answered \"%s\" to \"%s\"", (int)p->pid, reply, cmd);
}

static void peer_alloc(struct peer *p, const char *how, size_t bytes, const char *want)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %zu", how, bytes);
    peer_expect(p, cmd, want);
}

static void peer_info(struct peer *p, size_t free_b)
{
    char want[96];
    snprintf(want, sizeof want, "free %zu total %zu", free_b, VRAM);
    peer_expect(p, "info", want);
}

/* Asks the peer to exit and reaps it. */
static void peer_exit(struct peer *p)
{
    fprintf(p->to, "exit\n");
    fclose(p->to);
    fclose(p->from);
    int status;
    cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "peer exited with status %#x",
              status);
}

static size_t my_free(void)
{
    size_t free_b, total;
    CU_OK(cuMemGetInfo_v2(&free_b, &total));
    cr_assert_eq(total, VRAM);
    return free_b;
}

Test(sim_shared, two_processes_see_each_others_allocations_and_frees)
{
    sim_start();
    cr_assert_eq(my_free(), VRAM);
    struct peer a;
    peer_start(&a);
    peer_alloc(&a, "alloc", 40 * MiB, "ok");
    cr_assert_eq(my_free(), 24 * MiB);
    cr_assert_eq(simcuda_device_in_use(0), 40 * MiB);
    cr_assert_eq(simcuda_process_in_use(0, a.pid), 40 * MiB);
    cr_assert_eq(simcuda_physical_in_use(0), 0, "this process holds nothing itself");

    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc_v2(&p, 32 * MiB), CUDA_ERROR_OUT_OF_MEMORY, "fits alone, not now");
    peer_expect(&a, "free", "ok");
    cr_assert_eq(my_free(), VRAM);
    cr_assert_eq(simcuda_process_in_use(0, a.pid), 0);
    CU_OK(cuMemAlloc_v2(&p, 32 * MiB));
    peer_info(&a, 32 * MiB);
    peer_alloc(&a, "alloc", 40 * MiB, OOM_REPLY);
    CU_OK(cuMemFree_v2(p));
    peer_alloc(&a, "alloc", 40 * MiB, "ok");
    peer_exit(&a);
    cr_assert_eq(my_free(), VRAM, "an exited process's memory is the device's again");
}

Test(sim_shared, three_processes_share_one_capacity)
{
    sim_start();
    struct peer a, b;
    peer_start(&a);
    peer_start(&b);
    peer_alloc(&a, "create", 20 * MiB, "ok");
    peer_alloc(&b, "alloc", 20 * MiB, "ok");
    cr_assert_eq(my_free(), 24 * MiB);
    peer_info(&a, 24 * MiB);

    CUmemAllocationProp prop = sim_prop(CU_MEM_LOCATION_TYPE_DEVICE, 0);
    CUmemGenericAllocationHandle h;
    cr_assert_eq(cuMemCreate(&h, 26 * MiB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
    CUdeviceptr pooled;
    cr_assert_eq(cuMemAllocAsync(&pooled, 26 * MiB, 0), CUDA_ERROR_OUT_OF_MEMORY);

    peer_exit(&a); /* without freeing: its handle dies with it */
    CU_OK(cuMemCreate(&h, 26 * MiB, &prop, 0));
    peer_info(&b, 18 * MiB);
    peer_alloc(&b, "alloc", 20 * MiB, OOM_REPLY);
    CU_OK(cuMemRelease(h));
    peer_alloc(&b, "alloc", 20 * MiB, "ok");
    cr_assert_eq(simcuda_device_in_use(0), 40 * MiB);
    peer_exit(&b);
}

Test(sim_shared, killed_process_memory_is_reclaimed)
{
    sim_start();
    struct peer a;
    peer_start(&a);
    peer_alloc(&a, "alloc", 48 * MiB, "ok");
    CUdeviceptr p;
    cr_assert_eq(cuMemAlloc_v2(&p, 48 * MiB), CUDA_ERROR_OUT_OF_MEMORY);
    kill(a.pid, SIGKILL);
    /* Not reaped yet: a zombie holds no device memory. */
    for (int i = 0; i < 1000 && simcuda_process_in_use(0, a.pid) != 0; i++)
        usleep(1000);
    cr_assert_eq(simcuda_process_in_use(0, a.pid), 0);
    CU_OK(cuMemAlloc_v2(&p, 48 * MiB));
    cr_assert_eq(simcuda_device_in_use(0), 48 * MiB);
    fclose(a.to);
    fclose(a.from);
    int status;
    cr_assert_eq(waitpid(a.pid, &status, 0), a.pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

Test(sim_shared, forked_child_is_charged_for_its_own_memory_only)
{
    sim_start();
    CUdeviceptr p;
    CU_OK(cuMemAlloc_v2(&p, 16 * MiB));
    pid_t child = fork();
    if (child == 0) {
        CUdeviceptr q;
        /* The parent's 16 MiB stay charged to the parent; the child's own 32 MiB are its. */
        int ok = cuMemAlloc_v2(&q, 32 * MiB) == CUDA_SUCCESS &&
                 simcuda_process_in_use(0, getpid()) == 32 * MiB &&
                 simcuda_device_in_use(0) == 48 * MiB && cuMemFree_v2(p) == CUDA_SUCCESS &&
                 simcuda_device_in_use(0) == 48 * MiB;
        _exit(ok ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(simcuda_device_in_use(0), 16 * MiB);
    cr_assert_eq(simcuda_process_in_use(0, getpid()), 16 * MiB);
}

Test(sim_shared, another_size_is_refused_while_processes_are_attached)
{
    struct peer a;
    peer_start(&a); /* 64 MiB */
    setenv("SIMCUDA_VRAM", "32MiB", 1);
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    char want[512];
    snprintf(want, sizeof want,
             "simcuda: SIMCUDA_SHARED=%s (/dev/shm%s): the attached processes have 1 device(s) of "
             "64 MiB while this process asks for 1 of 32 MiB (SIMCUDA_DEVICES and SIMCUDA_VRAM "
             "must match)\n",
             name, shm_name);
    cr_assert_stderr_eq_str(want);
    peer_exit(&a);
}

Test(sim_shared, a_segment_nobody_uses_takes_the_new_size)
{
    struct peer a;
    peer_start(&a);
    peer_exit(&a);
    setenv("SIMCUDA_VRAM", "32MiB", 1);
    sim_start();
    size_t free_b, total;
    CU_OK(cuMemGetInfo_v2(&free_b, &total));
    cr_assert_eq(total, 32 * MiB);
    cr_assert_eq(free_b, 32 * MiB);
}

/* ---- segments that are not trusted ---------------------------------------------------------- */

static void expect_refused(const char *why)
{
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    char want[512];
    snprintf(want, sizeof want, "simcuda: SIMCUDA_SHARED=%s (/dev/shm%s): %s\n", name, shm_name,
             why);
    cr_assert_stderr_eq_str(want);
}

/* A segment made by a peer, then opened for the test to damage. */
static int made_segment(void)
{
    struct peer a;
    peer_start(&a);
    peer_exit(&a);
    int fd = shm_open(shm_name, O_RDWR, 0);
    cr_assert_geq(fd, 0);
    return fd;
}

Test(sim_shared, a_segment_of_another_mode_is_refused)
{
    int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchmod(fd, 0644), 0);
    close(fd);
    expect_refused("has mode 0644, expected a regular file of mode 0600: refused");
}

Test(sim_shared, a_truncated_segment_is_refused)
{
    int fd = made_segment();
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(ftruncate(fd, 100), 0);
    close(fd);
    char why[160];
    snprintf(why, sizeof why,
             "corrupt or of another simcuda version (100 bytes, expected %lld): refused",
             (long long)st.st_size);
    expect_refused(why);
}

/* Overwrites len bytes at offset of a valid segment. */
static void damage(off_t offset, const void *bytes, size_t len)
{
    int fd = made_segment();
    cr_assert_eq(pwrite(fd, bytes, len, offset), (ssize_t)len);
    close(fd);
}

Test(sim_shared, a_segment_with_a_bad_magic_is_refused)
{
    damage(0, "garbage!", 8);
    expect_refused("corrupt (bad magic): refused; remove it if no process uses it");
}

Test(sim_shared, a_segment_with_a_bad_header_checksum_is_refused)
{
    uint64_t vram = 1ULL << 40; /* the device size, right after magic, version, size, uid, count */
    damage(24, &vram, sizeof vram);
    expect_refused("corrupt (bad header checksum): refused; remove it if no process uses it");
}

Test(sim_shared, a_name_that_is_not_a_plain_word_is_refused)
{
    setenv("SIMCUDA_SHARED", "../x", 1);
    cr_redirect_stderr();
    cr_assert_eq(cuInit(0), CUDA_ERROR_INVALID_VALUE);
    fflush(stderr);
    cr_assert_stderr_eq_str(
        "simcuda: SIMCUDA_SHARED=\"../x\": expected 1 to 64 letters, digits, '.', '_' or '-'\n");
}
