/* The control socket server (see ctl_server.h).
 *
 * Invariants: the socket path is bound only inside a directory this uid owns with mode 0700, so
 * no other user can reach it or plant files in it; an existing socket file is replaced only after
 * a connect to it failed (nobody listens); the file is removed at exit only by the process that
 * bound it (not by a forked child). The thread blocks every signal, so it never runs the
 * program's handlers.
 */
#include "interpose/ctl_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "interpose/ctl_proto.h"
#include "interpose/service_thread.h"
#include "allocator/log.h"

/* Connections served at once; a connect beyond waits in the listen backlog. */
#define VS_CTL_MAX_CLIENTS 16

static int listen_fd = -1;
static pid_t owner;
static struct sockaddr_un addr;

/* A directory we may put the socket in: ours, mode 0700, not a symlink. Creates it if missing. */
static bool ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        vs_log(VS_LOG_ERROR, "control socket off: cannot create %s: %s", dir, strerror(errno));
        return false;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        vs_log(VS_LOG_ERROR, "control socket off: %s: %s", dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
        vs_log(VS_LOG_ERROR,
               "control socket off: %s must be a directory owned by uid %u with mode 0700 "
               "(it is %s owned by uid %u with mode %04o)",
               dir, (unsigned)geteuid(), S_ISDIR(st.st_mode) ? "a directory" : "not a directory",
               (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return false;
    }
    return true;
}

/* Whether a process accepts connections on addr. */
static bool someone_listens(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool yes = connect(fd, (const struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return yes;
}

/* Removes a stale socket file at addr; false (logged) when the path must not be replaced. */
static bool clear_stale(void)
{
    struct stat st;
    if (lstat(addr.sun_path, &st) != 0)
        return true;
    if (!S_ISSOCK(st.st_mode)) {
        vs_log(VS_LOG_ERROR, "control socket off: %s exists and is not a socket", addr.sun_path);
        return false;
    }
    if (someone_listens()) {
        vs_log(VS_LOG_ERROR, "control socket off: another process serves %s", addr.sun_path);
        return false;
    }
    if (unlink(addr.sun_path) != 0 && errno != ENOENT) {
        vs_log(VS_LOG_ERROR, "control socket off: cannot remove stale %s: %s", addr.sun_path,
               strerror(errno));
        return false;
    }
    return true;
}

/* One client. A connection reads its request (or, once answered, drains what follows an
 * oversized one) while `reading`, sends `reply` once there is one, and is closed when neither is
 * left or at its deadline. */
struct conn {
    int fd; /* -1: free slot */
    bool reading, draining;
    struct vs_ctl_request req;
    int peer_pid; /* SO_PEERCRED */
    size_t drained;
    char *reply; /* with its newline; NULL: not answered yet */
    size_t reply_len, sent;
    long long deadline; /* ms on CLOCK_MONOTONIC: request complete, then reply sent */
};

static struct conn conns[VS_CTL_MAX_CLIENTS];

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Frees the slot; the descriptor is closed unless the program closed it already (its number may
 * be the program's own by now). */
static void close_conn(struct conn *c, bool fd_gone)
{
    if (!fd_gone)
        close(c->fd);
    free(c->reply);
    *c = (struct conn){.fd = -1};
}

/* Queues reply (malloc'ed, no newline; NULL when out of memory: the connection just closes) and
 * gives the client VS_CTL_TIMEOUT_MS from now to take it. */
static void answer(struct conn *c, char *reply)
{
    c->deadline = now_ms() + VS_CTL_TIMEOUT_MS;
    if (!reply) {
        c->reading = false;
        return;
    }
    c->reply_len = strlen(reply) + 1;
    reply[c->reply_len - 1] = '\n'; /* replaces the NUL: the text is sent with its newline */
    c->reply = reply;
}

static void accept_one(int lfd, struct conn *c)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            poll(NULL, 0, 100); /* out of descriptors: let the program free some */
        return;
    }
    *c = (struct conn){.fd = fd, .reading = true, .deadline = now_ms() + VS_CTL_TIMEOUT_MS};
    struct ucred cred;
    socklen_t len = sizeof cred;
    bool known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0;
    c->peer_pid = known ? (int)cred.pid : 0;
    if (!known || cred.uid != geteuid()) {
        c->reading = false;
        answer(c, vs_ctl_error("permission denied: only the process's own user may control it"));
    }
}

/* Takes what the client sent; false when the connection is to be closed. */
static bool receive(struct conn *c)
{
    char buf[4096];
    ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (r == 0) { /* the client shut its side */
        c->reading = false;
        if (!c->reply)
            answer(c, vs_ctl_error(VS_CTL_ERR_INCOMPLETE));
        return true;
    }
    if (c->draining) {
        c->drained += (size_t)r;
        if (memchr(buf, '\n', (size_t)r) || c->drained >= VS_CTL_DISCARD_MAX)
            c->reading = false;
        return true;
    }
    size_t used;
    switch (vs_ctl_feed(&c->req, buf, (size_t)r, &used)) {
    case VS_CTL_MORE:
        break;
    case VS_CTL_LINE:
        c->reading = false;
        answer(c, vs_ctl_handle(c->req.line, c->req.len, c->peer_pid));
        break;
    case VS_CTL_TOO_LONG:
        /* Answer now and read on: closing with unread input would reset the connection before
         * the client has read the reply. */
        c->draining = true;
        c->drained = (size_t)r - used;
        c->reading = !memchr(buf + used, '\n', (size_t)r - used);
        answer(c, vs_ctl_error(VS_CTL_ERR_TOO_LONG));
        break;
    }
    return true;
}

/* Sends what the socket takes of the reply; false on a send error. */
static bool transmit(struct conn *c)
{
    ssize_t w =
        send(c->fd, c->reply + c->sent, c->reply_len - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c->sent += (size_t)w;
    return true;
}

/* Advances c after poll reported revents; at its deadline a client still sending its request
 * gets the timeout error, any other is closed. */
static void step(struct conn *c, short revents, long long now)
{
    if (revents & POLLNVAL) {
        close_conn(c, true);
        return;
    }
    bool ok = true;
    if (c->reading && (revents & (POLLIN | POLLHUP | POLLERR)))
        ok = receive(c);
    if (ok && c->reply && c->sent < c->reply_len && (revents & (POLLOUT | POLLERR | POLLHUP)))
        ok = transmit(c);
    if (ok && c->deadline <= now) {
        if (c->reading && !c->reply)
            answer(c, vs_ctl_error(VS_CTL_ERR_TIMEOUT));
        else
            ok = false;
        c->reading = false;
    }
    if (!ok || (!c->reading && (!c->reply || c->sent == c->reply_len)))
        close_conn(c, false);
}

/* Serves every connection at once (poll), each bounded by its own deadline, so a slow or silent
 * client delays no other; at most VS_CTL_MAX_CLIENTS are open, later ones wait in the backlog. */
static void *serve_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    vs_log_service_thread();
    for (size_t i = 0; i < VS_CTL_MAX_CLIENTS; i++)
        conns[i].fd = -1;
    struct pollfd pfd[VS_CTL_MAX_CLIENTS + 1];
    for (;;) {
        long long now = now_ms(), next = -1;
        struct conn *free_slot = NULL;
        for (size_t i = 0; i < VS_CTL_MAX_CLIENTS; i++) {
            struct conn *c = &conns[i];
            pfd[i] = (struct pollfd){.fd = c->fd};
            if (c->fd < 0) {
                free_slot = free_slot ? free_slot : c;
                continue;
            }
            pfd[i].events = (c->reading ? POLLIN : 0) | (c->reply ? POLLOUT : 0);
            if (next < 0 || c->deadline < next)
                next = c->deadline;
        }
        pfd[VS_CTL_MAX_CLIENTS] = (struct pollfd){.fd = free_slot ? lfd : -1, .events = POLLIN};
        int timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);
        if (poll(pfd, VS_CTL_MAX_CLIENTS + 1, timeout) < 0 && errno != EINTR) {
            vs_log(VS_LOG_ERROR, "control socket stopped: poll: %s", strerror(errno));
            return NULL;
        }
        now = now_ms();
        for (size_t i = 0; i < VS_CTL_MAX_CLIENTS; i++)
            if (conns[i].fd >= 0)
                step(&conns[i], pfd[i].revents, now);
        if (pfd[VS_CTL_MAX_CLIENTS].revents & POLLNVAL) {
            vs_log(VS_LOG_ERROR, "control socket stopped: the program closed its descriptor");
            return NULL;
        }
        if (pfd[VS_CTL_MAX_CLIENTS].revents & POLLIN)
            accept_one(lfd, free_slot);
    }
}

const char *vs_ctl_server_path(void)
{
    return listen_fd >= 0 && getpid() == owner ? addr.sun_path : NULL;
}

static void remove_socket(void)
{
    if (listen_fd >= 0 && getpid() == owner)
        unlink(addr.sun_path);
}

static void fork_child(void)
{
    if (listen_fd >= 0)
        close(listen_fd);
    listen_fd = -1;
}

void vs_ctl_server_start(void)
{
    char dir[sizeof addr.sun_path];
    addr.sun_family = AF_UNIX;
    long pid = (long)getpid();
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    /* `vramshim ctl` looks in the same two places, in the same order (ctl_proto.h). */
    if (!vs_ctl_dir(dir, sizeof dir, true) ||
        !vs_ctl_socket_path(addr.sun_path, sizeof addr.sun_path, dir, pid)) {
        if (xdg && *xdg)
            vs_log(VS_LOG_WARN,
                   "control socket: XDG_RUNTIME_DIR=%s is too long for a socket path "
                   "(%s/vramshim/%ld.sock must fit in %zu bytes); using /tmp instead",
                   xdg, xdg, pid, sizeof addr.sun_path - 1);
        if (!vs_ctl_dir(dir, sizeof dir, false) ||
            !vs_ctl_socket_path(addr.sun_path, sizeof addr.sun_path, dir, pid)) {
            vs_log(VS_LOG_ERROR, "control socket off: path in %s is too long for a socket", dir);
            return;
        }
    }
    if (!ensure_dir(dir) || !clear_stale())
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&addr, sizeof addr) != 0 ||
        chmod(addr.sun_path, 0600) != 0 || listen(fd, 8) != 0) {
        vs_log(VS_LOG_ERROR, "control socket off: %s: %s", addr.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    if (!vs_service_thread_start(serve_loop, (void *)(intptr_t)fd, "control socket")) {
        unlink(addr.sun_path);
        close(fd);
        return;
    }
    listen_fd = fd;
    owner = getpid();
    atexit(remove_socket);
    pthread_atfork(NULL, NULL, fork_child);
    vs_log(VS_LOG_INFO, "control socket %s", addr.sun_path);
}
