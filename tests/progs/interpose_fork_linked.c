/* Forks while another thread is allocating and the shim's writer thread still has its events
 * queued. The child allocates and frees CHILD_PAIRS times on its own and exits normally; the
 * parent keeps going after the fork. Prints the child's pid and how many pairs each process made.
 *
 * The fork lands wherever the other thread is, inside the shim's hooks and simcuda included:
 * neither may leave a lock held in the child.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interpose_prog.h"

#define CHILD_PAIRS 3

static CUcontext ctx;
static atomic_bool stop;
static atomic_ulong background_pairs;

static void pairs(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        CUdeviceptr p;
        CK(cuMemAlloc(&p, 65536));
        CK(cuMemFree(p));
    }
}

static void *background(void *arg)
{
    (void)arg;
    CK(cuCtxSetCurrent(ctx));
    while (!atomic_load(&stop)) {
        pairs(1);
        atomic_fetch_add(&background_pairs, 1);
    }
    return NULL;
}

int main(void)
{
    CUdevice dev;
    CK(cuInit(0));
    CK(cuDeviceGet(&dev, 0));
    CK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CK(cuCtxSetCurrent(ctx));
    pairs(5);
    pthread_t t;
    if (pthread_create(&t, NULL, background, NULL) != 0)
        return 1;
    while (atomic_load(&background_pairs) < 20)
        usleep(1000);

    fflush(stdout);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        /* Only this thread exists here; the driver state is the parent's copy (simcuda allows
         * using it, a real driver would not). */
        pairs(CHILD_PAIRS);
        exit(0);
    }
    pairs(5);
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    printf("child pid %d\n", (int)child);
    printf("child pairs %d\n", CHILD_PAIRS);
    printf("parent pairs %lu\n", 10 + atomic_load(&background_pairs));
    return 0;
}
