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
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "interpose/ctl_proto.h"
#include "interpose/log.h"

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

static void send_reply(int fd, char *reply)
{
    if (!reply)
        return;
    size_t len = strlen(reply);
    reply[len] = '\n'; /* replaces the NUL: the text is sent with its newline, not as a string */
    for (size_t off = 0; off <= len;) {
        ssize_t w = send(fd, reply + off, len + 1 - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(reply);
}

/* Reads one line (without '\n') into buf; returns its length, or -1 when the peer sent more
 * than max bytes without a newline, -2 on EOF or timeout before a newline. */
static ssize_t read_line(int fd, char *buf, size_t max)
{
    size_t n = 0;
    while (n < max) {
        ssize_t r = recv(fd, buf + n, max - n, 0);
        if (r <= 0)
            return -2;
        char *nl = memchr(buf + n, '\n', (size_t)r);
        if (nl)
            return nl - buf;
        n += (size_t)r;
    }
    return -1;
}

static void serve(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid()) {
        send_reply(fd, vs_ctl_error("permission denied: only the process's own user may control it"));
        return;
    }
    struct timeval tv = {VS_CTL_TIMEOUT_MS / 1000, VS_CTL_TIMEOUT_MS % 1000 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[VS_CTL_MAX_REQUEST];
    ssize_t n = read_line(fd, buf, sizeof buf);
    if (n == -1)
        send_reply(fd, vs_ctl_error("request too long (at most 255 bytes and a newline)"));
    else if (n == -2)
        send_reply(fd, vs_ctl_error("incomplete request (expected one line ending in a newline)"));
    else
        send_reply(fd, vs_ctl_handle(buf, (size_t)n));
}

static void *serve_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE ||
                errno == ENOBUFS || errno == ENOMEM) {
                if (errno != EINTR && errno != ECONNABORTED)
                    poll(NULL, 0, 100); /* out of descriptors: let the program free some */
                continue;
            }
            vs_log(VS_LOG_ERROR, "control socket stopped: accept: %s", strerror(errno));
            return NULL;
        }
        serve(fd);
        close(fd);
    }
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

static bool start_thread(int lfd)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int err = pthread_create(&th, NULL, serve_loop, (void *)(intptr_t)lfd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        vs_log(VS_LOG_ERROR, "control socket off: cannot start its thread: %s", strerror(err));
        return false;
    }
    pthread_detach(th);
    return true;
}

void vs_ctl_server_start(void)
{
    char dir[sizeof addr.sun_path];
    bool xdg = vs_ctl_dir(dir, sizeof dir, true);
    if (!xdg && !vs_ctl_dir(dir, sizeof dir, false)) {
        vs_log(VS_LOG_ERROR, "control socket off: its directory name is too long");
        return;
    }
    addr.sun_family = AF_UNIX;
    if (!vs_ctl_socket_path(addr.sun_path, sizeof addr.sun_path, dir, (long)getpid())) {
        vs_log(VS_LOG_ERROR, "control socket off: path in %s is too long for a socket", dir);
        return;
    }
    if (!ensure_dir(dir) || !clear_stale())
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (const struct sockaddr *)&addr, sizeof addr) != 0 ||
        chmod(addr.sun_path, 0600) != 0 || listen(fd, 8) != 0) {
        vs_log(VS_LOG_ERROR, "control socket off: %s: %s", addr.sun_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    if (!start_thread(fd)) {
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
