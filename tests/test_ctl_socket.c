/* The control socket (interpose/ctl_server.c) and `vramshim ctl`: permissions, stale files,
 * bad requests that change nothing, status JSON, stages begun through it, slow, silent and
 * oversized clients, a host whose stderr nobody reads. Each test gives the process its own
 * XDG_RUNTIME_DIR. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "interpose/ctl_proto.h"
#include "allocator/log.h"
#include "stages_fixture.h"

struct proc {
    pid_t pid;
    FILE *in, *out;
    char xdg[32], dir[64], sock[96], err[64];
    int err_fd;           /* >= 0: the program's stderr, instead of the file err */
    const char *xdg_env;  /* not NULL: XDG_RUNTIME_DIR for the program instead of xdg */
};

/* Makes a fresh XDG_RUNTIME_DIR for p (the socket directory inside is not created). */
static void make_xdg(struct proc *p)
{
    snprintf(p->xdg, sizeof p->xdg, "/tmp/vs_ctl_xdg_XXXXXX");
    cr_assert(mkdtemp(p->xdg), "mkdtemp: %s", strerror(errno));
    snprintf(p->dir, sizeof p->dir, "%s/vramshim", p->xdg);
    p->err_fd = -1;
    p->xdg_env = NULL;
}

/* Binds a socket at path and closes it without removing the file: what a crashed process
 * leaves behind. */
static void leave_stale_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0)
        _exit(120);
    close(fd);
}

/* Starts stages_ctl_linked with the socket on (VRAMSHIM_CTL=1, or through the policy file
 * `policy` when not NULL); stale: leave a stale socket at its path first. */
static void start_with(struct proc *p, bool stale, const char *policy)
{
    int to_child[2], from_child[2];
    cr_assert(pipe(to_child) == 0 && pipe(from_child) == 0);
    snprintf(p->err, sizeof p->err, "%s/stderr", p->xdg);
    fflush(NULL);
    p->pid = fork();
    cr_assert(p->pid >= 0);
    if (p->pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        int e = p->err_fd >= 0 ? p->err_fd : open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(e, 2);
        close(to_child[1]);
        close(from_child[0]);
        if (stale) {
            mkdir(p->dir, 0700);
            char path[96];
            snprintf(path, sizeof path, "%s/%d.sock", p->dir, (int)getpid());
            leave_stale_socket(path);
        }
        setenv("XDG_RUNTIME_DIR", p->xdg_env ? p->xdg_env : p->xdg, 1);
        if (policy)
            setenv("VRAMSHIM_POLICY", policy, 1);
        else
            setenv("VRAMSHIM_CTL", "1", 1);
        setenv("LD_LIBRARY_PATH", VS_BUILD_DIR "/sim", 1);
        setenv("LD_PRELOAD", VS_SHIM, 1);
        execl(VS_PROG("stages_ctl_linked"), "stages_ctl_linked", (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    p->in = fdopen(to_child[1], "w");
    p->out = fdopen(from_child[0], "r");
    char line[64];
    cr_assert(fgets(line, sizeof line, p->out), "the program did not start");
    cr_assert_eq(atoi(line + 6), p->pid, "unexpected first line %s", line);
    snprintf(p->sock, sizeof p->sock, "%s/%d.sock", p->dir, (int)p->pid);
}

static void start(struct proc *p, bool stale)
{
    start_with(p, stale, NULL);
}

/* Sends "quit", waits for the exit; returns the program's stderr. */
static char *stop(struct proc *p)
{
    fputs("quit\n", p->in);
    fclose(p->in);
    fclose(p->out);
    int status;
    cr_assert(waitpid(p->pid, &status, 0) == p->pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the program failed (status %d)",
              status);
    return vs_slurp(p->err);
}

static void cleanup(struct proc *p)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", p->xdg);
    cr_expect(system(cmd) == 0);
}

/* Connects to path; -errno on failure. */
static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends len raw bytes (then shuts the write side when half_close) and returns the parsed reply. */
static json_t *request_raw(const char *path, const char *req, size_t len, bool half_close)
{
    int fd = connect_to(path);
    cr_assert(fd >= 0, "cannot connect to %s: %s", path, strerror(-fd));
    cr_assert(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
    if (half_close)
        shutdown(fd, SHUT_WR);
    char buf[65536];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0)
        n += (size_t)k;
    close(fd);
    buf[n] = 0;
    cr_assert(n > 0 && buf[n - 1] == '\n', "reply is not one line: '%s'", buf);
    json_error_t err;
    json_t *j = json_loads(buf, 0, &err);
    cr_assert(json_is_object(j), "reply is not a JSON object (%s): %s", err.text, buf);
    return j;
}

static json_t *request(const char *path, const char *req)
{
    return request_raw(path, req, strlen(req), false);
}

static json_t *status_of(const struct proc *p)
{
    json_t *r = request(p->sock, "status\n");
    cr_assert(json_is_true(json_object_get(r, "ok")), "status failed");
    json_t *s = json_incref(json_object_get(r, "status"));
    json_decref(r);
    return s;
}

Test(ctl_socket, permissions_status_and_removal_at_exit)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    struct stat st;
    cr_assert(lstat(p.dir, &st) == 0 && S_ISDIR(st.st_mode));
    cr_expect_eq(st.st_mode & 07777, 0700, "directory mode %o", st.st_mode & 07777);
    cr_assert(lstat(p.sock, &st) == 0 && S_ISSOCK(st.st_mode), "no socket at %s", p.sock);
    cr_expect_eq(st.st_mode & 07777, 0600, "socket mode %o", st.st_mode & 07777);

    json_t *s = status_of(&p);
    cr_expect_eq(json_integer_value(json_object_get(s, "pid")), p.pid);
    cr_expect_str_eq(json_string_value(json_object_get(s, "mode")), "arena");
    cr_expect(json_is_null(json_object_get(s, "stage")));
    json_decref(s);
    free(stop(&p));
    cr_expect(lstat(p.sock, &st) != 0 && errno == ENOENT, "the socket was not removed at exit");
    cleanup(&p);
}

Test(ctl_socket, bad_requests_get_errors_and_change_nothing)
{
    static const struct {
        const char *req;
        const char *error;
    } cases[] = {
        {"bogus\n", "unknown command 'bogus'"},
        {"stage\n", "'stage' needs one stage or tag name"},
        {"stage two words\n", "'stage' needs one stage or tag name"},
        {"stage-end\n", "'stage-end' needs one"},
        {"status now\n", "'status' takes no argument"},
        {"stage a\x01z\n", "not printable ASCII"},
        {"\n", "unknown command ''"},
        {"stage-end decode\n", "stage-end decode: no such stage or tag"},
        {"lend\n", "'lend' needs a byte count"},
        {"lend -5\n", "'lend' needs a byte count"},
        {"lend 1GiB\n", "'lend' needs a byte count"},
        {"lend 12345678901234567890\n", "'lend' needs a byte count"},
        {"lend 2251799813685249\n", "'lend' needs a byte count"}, /* 2 PiB + 1 */
    };
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *r = request(p.sock, cases[i].req);
        cr_expect(json_is_false(json_object_get(r, "ok")), "'%s' was accepted", cases[i].req);
        const char *e = json_string_value(json_object_get(r, "error"));
        cr_expect(e && strstr(e, cases[i].error), "'%s': error '%s', expected '%s'", cases[i].req,
                  e ? e : "(none)", cases[i].error);
        json_decref(r);
    }
    char big[1000];
    memset(big, 's', sizeof big);
    json_t *r = request_raw(p.sock, big, sizeof big, false);
    cr_expect(strstr(json_string_value(json_object_get(r, "error")), "request too long"));
    json_decref(r);
    r = request_raw(p.sock, "stage decode", 12, true);
    cr_expect(strstr(json_string_value(json_object_get(r, "error")), "incomplete request"));
    json_decref(r);

    /* No policy: it lends nothing, and says so at once. */
    r = request(p.sock, "lend 4096\n");
    cr_expect(json_is_true(json_object_get(r, "ok")));
    cr_expect_eq(json_integer_value(json_object_get(r, "asked_bytes")), 4096);
    cr_expect_eq(json_integer_value(json_object_get(r, "released_bytes")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "refused")), "its policy lends nothing");
    json_decref(r);

    json_t *s = status_of(&p);
    cr_expect(json_is_null(json_object_get(s, "stage")), "a bad request changed the stage");
    cr_expect_eq(json_array_size(json_object_get(s, "stack")), 0);
    json_decref(s);
    free(stop(&p));
    cleanup(&p);
}

/* Runs `vramshim ctl PID ARGS...` with the process's XDG_RUNTIME_DIR. */
static struct vs_run ctl(const struct proc *p, const char *a1, const char *a2)
{
    char pid[16], xdg[256];
    snprintf(pid, sizeof pid, "%d", (int)p->pid);
    snprintf(xdg, sizeof xdg, "XDG_RUNTIME_DIR=%s", p->xdg_env ? p->xdg_env : p->xdg);
    const char *argv[] = {VS_BUILD_DIR "/vramshim", "ctl", pid, a1, a2, NULL};
    const char *env[] = {xdg, NULL};
    return vs_run(argv, 0, env);
}

Test(ctl_socket, cli_stage_changes_what_later_allocations_carry)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    struct vs_run r = ctl(&p, "stage", "decode");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    cr_expect_str_eq(r.out, "stage decode begun\n");
    vs_run_free(&r);

    char line[16];
    fputs("alloc\n", p.in);
    fflush(p.in);
    cr_assert(fgets(line, sizeof line, p.out) && !strcmp(line, "ok\n"));

    r = ctl(&p, "status", NULL);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    json_error_t err;
    json_t *s = json_loads(r.out, 0, &err);
    cr_assert(json_is_object(s), "status output is not JSON (%s):\n%s", err.text, r.out);
    cr_expect(strchr(r.out, '\n') != strrchr(r.out, '\n'), "status is not pretty-printed");
    cr_expect_str_eq(json_string_value(json_object_get(s, "stage")), "decode");
    cr_expect_eq(vs_usage(s, "stages", "decode", "live_bytes"), MiB);
    json_decref(s);
    vs_run_free(&r);

    r = ctl(&p, "stage-end", "decode");
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.raw_err);
    vs_run_free(&r);
    r = ctl(&p, "stage-end", "decode");
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.raw_err, "vramshim ctl: stage-end decode: no such stage or tag\n");
    vs_run_free(&r);
    r = ctl(&p, "launch", "x");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.raw_err, "unknown command 'launch'"), "%s", r.raw_err);
    vs_run_free(&r);
    free(stop(&p));

    r = ctl(&p, "status", NULL); /* the process is gone */
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.raw_err, "vramshim ctl: no process"), "%s", r.raw_err);
    vs_run_free(&r);
    cleanup(&p);
}

Test(ctl_socket, policy_ctl_on_starts_the_socket)
{
    struct proc p;
    make_xdg(&p);
    char policy[256];
    vs_write_policy(policy, sizeof policy, "ctl_on", "[global]\nctl = on\n\n[stage decode]\n"
                                                     "match = *vae_decode*\n");
    start_with(&p, false, policy);
    json_t *s = status_of(&p);
    cr_expect_str_eq(json_string_value(json_object_get(s, "policy")), policy);
    json_decref(s);
    char *err = stop(&p);
    cr_expect_str_empty(err, "%s", err);
    free(err);
    unlink(policy);
    cleanup(&p);
}

Test(ctl_socket, no_socket_unless_asked_for)
{
    struct proc p;
    make_xdg(&p);
    char policy[256];
    vs_write_policy(policy, sizeof policy, "ctl_off", "[stage decode]\nmatch = *vae_decode*\n");
    start_with(&p, false, policy);
    struct stat st;
    cr_expect(lstat(p.dir, &st) != 0, "the socket directory was created");
    char *err = stop(&p);
    cr_expect_str_empty(err, "%s", err);
    free(err);
    unlink(policy);
    cleanup(&p);
}

/* A forked child that exits must not take the parent's socket with it. */
Test(ctl_socket, forked_child_leaves_the_socket_to_the_parent)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    char line[16];
    fputs("fork\n", p.in);
    fflush(p.in);
    cr_assert(fgets(line, sizeof line, p.out) && !strcmp(line, "ok\n"));
    struct stat st;
    cr_expect(lstat(p.sock, &st) == 0, "the child removed the parent's socket");
    json_t *s = status_of(&p);
    cr_expect_eq(json_integer_value(json_object_get(s, "pid")), p.pid);
    json_decref(s);
    free(stop(&p));
    cleanup(&p);
}

Test(ctl_socket, stale_socket_file_is_replaced)
{
    struct proc p;
    make_xdg(&p);
    start(&p, true);
    json_t *s = status_of(&p);
    cr_expect_eq(json_integer_value(json_object_get(s, "pid")), p.pid);
    json_decref(s);
    char *err = stop(&p);
    cr_expect_str_empty(err, "%s", err);
    free(err);
    cleanup(&p);
}

Test(ctl_socket, directory_with_wrong_mode_is_refused_and_the_program_runs)
{
    struct proc p;
    make_xdg(&p);
    cr_assert(mkdir(p.dir, 0700) == 0 && chmod(p.dir, 0755) == 0);
    start(&p, false);
    struct stat st;
    cr_expect(lstat(p.sock, &st) != 0, "a socket was created in a 0755 directory");
    char *err = stop(&p);
    char want[256];
    snprintf(want, sizeof want,
             "vramshim: control socket off: %s must be a directory owned by uid %u with mode "
             "0700 (it is a directory owned by uid %u with mode 0755)\n",
             p.dir, (unsigned)geteuid(), (unsigned)geteuid());
    cr_expect_str_eq(err, want);
    free(err);
    cleanup(&p);
}

/* As root: another uid can neither reach the socket through its directory nor, when the
 * permissions are opened up on purpose, be served (SO_PEERCRED). */
static int connect_as(uid_t uid, const char *path, char *reply, size_t len)
{
    int fds[2];
    cr_assert(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (setgid(65534) != 0 || setuid(uid) != 0)
            _exit(100);
        int fd = connect_to(path);
        if (fd < 0)
            _exit(fd == -EACCES ? 101 : 102);
        send(fd, "status\n", 7, MSG_NOSIGNAL);
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n > 0 && write(fds[1], buf, (size_t)n) != n)
            _exit(103);
        _exit(0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], reply, len - 1);
    reply[n > 0 ? n : 0] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(ctl_socket, other_users_are_refused)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to act as another uid");
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    char reply[512];
    cr_expect_eq(connect_as(65534, p.sock, reply, sizeof reply), 101,
                 "another uid could open the socket");
    cr_assert(chmod(p.xdg, 0755) == 0 && chmod(p.dir, 0711) == 0 && chmod(p.sock, 0666) == 0);
    cr_expect_eq(connect_as(65534, p.sock, reply, sizeof reply), 0);
    cr_expect(strstr(reply, "\"ok\":false") && strstr(reply, "permission denied"), "reply: %s",
              reply);
    free(stop(&p));
    cleanup(&p);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Connects and gives the connection a receive timeout, so a server that never answers fails the
 * test instead of hanging it. */
static int connect_with_timeout(const char *path, int seconds)
{
    int fd = connect_to(path);
    cr_assert(fd >= 0, "cannot connect to %s: %s", path, strerror(-fd));
    struct timeval tv = {seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* The error of the one-line reply on fd ("" for an ok reply, NULL for none or no JSON). */
static char *reply_error(int fd)
{
    char buf[65536];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = recv(fd, buf + n, sizeof buf - 1 - n, 0)) > 0) {
        n += (size_t)k;
        if (buf[n - 1] == '\n')
            break;
    }
    buf[n] = 0;
    json_t *j = json_loads(buf, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    const char *e = json_string_value(json_object_get(j, "error"));
    char *copy = strdup(json_is_true(json_object_get(j, "ok")) ? "" : e ? e : "?");
    json_decref(j);
    return copy;
}

/* status is answered while other clients hold connections, within a bound far below what
 * waiting for them would take (before, one thread served one client at a time). */
static void expect_status_answered_promptly(const struct proc *p)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fd = connect_with_timeout(p->sock, 30);
    cr_assert(send(fd, "status\n", 7, MSG_NOSIGNAL) == 7);
    char *e = reply_error(fd);
    double took = seconds_since(&t0);
    close(fd);
    cr_expect(e && !*e, "status failed: %s", e ? e : "(no reply)");
    free(e);
    cr_expect(took < 3.0, "status took %.1f s while other clients were connected", took);
}

Test(ctl_socket, slow_client_does_not_delay_status, .timeout = 60)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    int slow = connect_with_timeout(p.sock, 10);
    pid_t trickler = fork();
    cr_assert(trickler >= 0);
    if (trickler == 0) { /* one byte every 200 ms for 10 s, never a newline */
        for (int i = 0; i < 50 && send(slow, "s", 1, MSG_NOSIGNAL) == 1; i++)
            usleep(200000);
        _exit(0);
    }
    usleep(300000);
    expect_status_answered_promptly(&p);
    char *e = reply_error(slow);
    cr_expect(e && strstr(e, "no newline within 2 s"), "slow client got: %s", e ? e : "(none)");
    free(e);
    close(slow);
    kill(trickler, SIGKILL);
    waitpid(trickler, NULL, 0);
    free(stop(&p));
    cleanup(&p);
}

Test(ctl_socket, ten_silent_clients_do_not_delay_status, .timeout = 60)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    int silent[10];
    for (int i = 0; i < 10; i++)
        silent[i] = connect_with_timeout(p.sock, 10);
    usleep(100000);
    expect_status_answered_promptly(&p);
    for (int i = 0; i < 10; i++) {
        char *e = reply_error(silent[i]);
        cr_expect(e && strstr(e, "no newline within 2 s"), "silent client %d got: %s", i,
                  e ? e : "(none)");
        free(e);
        close(silent[i]);
    }
    free(stop(&p));
    cleanup(&p);
}

/* A client writes its whole request in 4 KiB pieces, as `nc -U` does, then reads the reply;
 * *sent_all: no write failed (before, the server closed after 256 bytes and the next write got
 * a broken pipe, so such a client never read the reply). */
static char *oversized_reply(const char *sock, size_t len, bool newline, bool *sent_all)
{
    char *req = malloc(len);
    memset(req, 's', len);
    if (newline)
        req[len - 1] = '\n';
    int fd = connect_with_timeout(sock, 10);
    size_t off = 0;
    for (ssize_t w = 0; off < len && w >= 0; off += (size_t)w) {
        w = send(fd, req + off, len - off < 4096 ? len - off : 4096, MSG_NOSIGNAL);
        if (off == 0)
            usleep(50000); /* the server reads the first piece on its own */
    }
    *sent_all = off >= len;
    if (!newline)
        shutdown(fd, SHUT_WR);
    char *e = reply_error(fd);
    close(fd);
    free(req);
    return e;
}

Test(ctl_socket, oversized_requests_get_the_error_reply, .timeout = 60)
{
    static const size_t sizes[] = {257, 4097, 200000, VS_CTL_DISCARD_MAX, 8 << 20};
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int nl = 0; nl < 2; nl++) {
            bool sent_all;
            char *e = oversized_reply(p.sock, sizes[i], nl, &sent_all);
            cr_expect(e && strstr(e, "request too long"), "%zu bytes%s: %s", sizes[i],
                      nl ? " and a newline" : "", e ? e : "(no reply)");
            /* Beyond the drain limit the server may close first: the reply is queued anyway. */
            cr_expect(sent_all || sizes[i] > VS_CTL_DISCARD_MAX,
                      "%zu bytes%s: the server closed while the request was being sent",
                      sizes[i], nl ? " and a newline" : "");
            free(e);
        }
    }
    json_t *s = status_of(&p);
    cr_expect(json_is_null(json_object_get(s, "stage")));
    json_decref(s);
    free(stop(&p));
    cleanup(&p);
}

/* Sends n requests the process refuses with a line on its stderr, each answered in time. */
static void refused_requests(const struct proc *p, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = connect_with_timeout(p->sock, 5);
        cr_assert(send(fd, "stage-end nope\n", 15, MSG_NOSIGNAL) == 15);
        char *e = reply_error(fd);
        close(fd);
        cr_assert(e && strstr(e, "no such stage"), "request %d: %s", i, e ? e : "(no reply)");
        free(e);
    }
}

static int count_substr(const char *s, const char *needle)
{
    int n = 0;
    for (const char *at = s; (at = strstr(at, needle)); at++)
        n++;
    return n;
}

Test(ctl_socket, refused_requests_are_rate_limited_in_the_host_log, .timeout = 60)
{
    struct proc p;
    make_xdg(&p);
    start(&p, false);
    refused_requests(&p, 40);
    sleep(2);
    refused_requests(&p, 1);
    char *err = stop(&p);
    int lines = count_substr(err, "vramshim: stage_end(nope): no such stage is open");
    cr_expect(lines >= 2 && lines <= VS_LOG_BURST + 4, "%d lines for 41 refused requests:\n%s",
              lines, err);
    cr_expect(strstr(err, "earlier lines left out: ") && strstr(err, " over the rate limit, 0 with "
                                                                     "stderr full)\n"),
              "no count of the lines left out:\n%s", err);
    free(err);
    cleanup(&p);
}

Test(ctl_socket, stderr_pipe_nobody_reads_does_not_stop_the_server, .timeout = 60)
{
    int fds[2];
    cr_assert(pipe(fds) == 0);
    /* Fill the pipe before the program gets it (a non-blocking flag set later would be the
     * program's too). */
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    char junk[4096];
    memset(junk, 'j', sizeof junk);
    while (write(fds[1], junk, sizeof junk) > 0)
        ;
    fcntl(fds[1], F_SETFL, 0);
    struct proc p;
    make_xdg(&p);
    p.err_fd = fds[1];
    start(&p, false);
    close(fds[1]);
    refused_requests(&p, 30);
    expect_status_answered_promptly(&p);

    fcntl(fds[0], F_SETFL, O_NONBLOCK); /* the read side only: the program's stays blocking */
    while (read(fds[0], junk, sizeof junk) > 0)
        ;
    sleep(2);
    refused_requests(&p, 1);
    char line[4096];
    ssize_t n = read(fds[0], line, sizeof line - 1);
    line[n > 0 ? n : 0] = 0;
    cr_expect(strstr(line, "vramshim: stage_end(nope): no such stage is open (") &&
                  strstr(line, " with stderr full)\n"),
              "after the pipe was drained: '%s'", line);
    fputs("quit\n", p.in);
    fclose(p.in);
    fclose(p.out);
    int status;
    cr_assert(waitpid(p.pid, &status, 0) == p.pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    close(fds[0]);
    cleanup(&p);
}

Test(ctl_socket, too_long_xdg_runtime_dir_is_reported_and_tmp_used)
{
    char xdg[160];
    snprintf(xdg, sizeof xdg, "/tmp/%0120d", 0);
    struct proc p;
    make_xdg(&p);
    p.xdg_env = xdg;
    start(&p, false);
    snprintf(p.sock, sizeof p.sock, "/tmp/vramshim-%u/%d.sock", (unsigned)geteuid(), (int)p.pid);
    struct vs_run r = ctl(&p, "status", NULL);
    cr_expect_eq(r.status, 0, "%s", r.raw_err);
    vs_run_free(&r);
    char *err = stop(&p);
    char want[512];
    snprintf(want, sizeof want,
             "vramshim: control socket: XDG_RUNTIME_DIR=%s is too long for a socket path "
             "(%s/vramshim/%d.sock must fit in 107 bytes); using /tmp instead\n",
             xdg, xdg, (int)p.pid);
    cr_expect_str_eq(err, want);
    free(err);
    struct stat st;
    cr_expect(lstat(p.sock, &st) != 0, "%s was not removed at exit", p.sock);
    cleanup(&p);
}
