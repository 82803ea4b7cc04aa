/* The shim's own threads (control socket, ledger publishing): started detached with every signal
 * blocked, so they never run the program's handlers. */
#ifndef VS_INTERPOSE_SERVICE_THREAD_H
#define VS_INTERPOSE_SERVICE_THREAD_H

#include <stdbool.h>

/* Starts fn(arg); false (one line naming `what`) when the thread cannot be created. */
bool vs_service_thread_start(void *(*fn)(void *), void *arg, const char *what);

#endif
