/* See service_thread.h. */
#include "interpose/service_thread.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "allocator/log.h"

bool vs_service_thread_start(void *(*fn)(void *), void *arg, const char *what)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int err = pthread_create(&th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        vs_log(VS_LOG_ERROR, "%s off: cannot start its thread: %s", what, strerror(err));
        return false;
    }
    pthread_detach(th);
    return true;
}
