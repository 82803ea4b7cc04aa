/* The control socket server (protocol and paths in ctl_proto.h).
 *
 * One thread, started at most once per process, serves up to VS_CTL_MAX_CLIENTS connections at
 * once with poll(): each reads one request line (bounded size, one deadline for the whole
 * request), has its peer's uid checked (SO_PEERCRED: only the process's own uid is served), gets
 * its reply and is closed; limits and error replies in ctl_proto.h. The thread's log lines are
 * rate-limited and never block (vs_log_service_thread). The socket file is removed at exit.
 * fork(): the child has no serving thread and does not remove the parent's socket; the parent
 * keeps serving.
 */
#ifndef VS_INTERPOSE_CTL_SERVER_H
#define VS_INTERPOSE_CTL_SERVER_H

/* Creates the directory and socket and starts the thread; failures (a directory with the wrong
 * owner or mode, a socket another process serves) are logged in one line and leave it off. */
void vs_ctl_server_start(void);

/* The socket's path while this process serves it, else NULL (set before the thread starts:
 * threads started after vs_ctl_server_start see it without a lock). */
const char *vs_ctl_server_path(void);

#endif
