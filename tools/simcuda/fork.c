/* simcuda across fork(): the child never inherits a lock held by a thread it does not have.
 *
 * Invariants:
 * - The handlers are registered when the library is loaded, before any simcuda lock can be held
 *   (registering them later, under a simcuda lock, could deadlock against a concurrent fork).
 * - The prepare handler takes every simcuda lock in the global order of sim.h, the order every
 *   thread nests them in, so it waits for threads inside the driver to leave and cannot deadlock
 *   against them; the fork happens with no driver structure half-updated.
 * - The child, the only thread left, resets what belonged to the parent's threads (stream
 *   workers, their queued and running work, waiters, test holds), settles the frees that work
 *   would have done, and puts new memory in files of its own, carving no new block out of chunks
 *   mapped before the fork (those stay shared with the parent), before unlocking.
 *   pthread_once state (SIMCUDA_FAIL parsing, the per-thread stream key) is fork-safe in glibc.
 */
#include "sim.h"

static pthread_mutex_t *const locks[] = {&vs_sim_init_lock, &vs_sim_sched_lock, &vs_sim_mem_lock,
                                         &vs_sim_ctx_lock, &vs_sim_fault_lock};
#define NLOCKS (sizeof locks / sizeof locks[0])

static void fork_prepare(void)
{
    for (size_t i = 0; i < NLOCKS; i++)
        pthread_mutex_lock(locks[i]);
}

static void fork_parent(void)
{
    for (size_t i = NLOCKS; i-- > 0;)
        pthread_mutex_unlock(locks[i]);
}

static void fork_child(void)
{
    struct vs_sim_op *dropped = vs_sim_streams_fork_child();
    vs_sim_memalloc_fork_child();
    vs_sim_pools_fork_child();
    vs_sim_backings_fork_child();
    fork_parent();
    /* Releasing may run cleanups that take the scheduler lock. */
    while (dropped) {
        struct vs_sim_op *next = dropped->next;
        vs_sim_op_release(dropped);
        dropped = next;
    }
}

__attribute__((constructor)) static void register_fork_handlers(void)
{
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        vs_sim_log(VS_SIM_LOG_ERROR, "cannot register fork handlers: a child forked while "
                                     "another thread is in the driver may hang");
}
