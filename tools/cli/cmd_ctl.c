/* `vramshim ctl PID COMMAND [NAME]`: talks to the control socket of a process running under the
 * shim (protocol in interpose/ctl_proto.h). Exit status: 0 done, 1 the process refused (its
 * error is printed) or cannot be reached, 2 bad usage. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "interpose/ctl_proto.h"
#include "policy/size.h"
#include "tools/cli/commands.h"
#include "tools/cli/ctl_client.h"

/* How long to wait for the reply: a demote copies memory and may take a while. */
#define VS_CTL_REPLY_TIMEOUT_MS 120000

static void vs_ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim ctl PID stage NAME | stage-end NAME | status | demote NAME |\n"
            "                        promote NAME | lend SIZE\n"
            "       vramshim ctl --ledger [--json]\n"
            "\n"
            "Controls process PID, which runs under the shim with its control socket on\n"
            "(VRAMSHIM_CTL=1, or ctl = on in its VRAMSHIM_POLICY file):\n"
            "  stage NAME      begin stage NAME (as vramshim_stage_begin would)\n"
            "  stage-end NAME  end stage NAME\n"
            "  status          print the process's state as JSON: mode, current stage, live,\n"
            "                  cached and demoted bytes per stage and tag\n"
            "  demote NAME     move the allocations of stage or tag NAME to host memory\n"
            "  promote NAME    move them back to device memory\n"
            "  lend SIZE       ask it to lend SIZE (4096, 512MiB, 2GiB) as a peer on its GPU\n"
            "                  would: it demotes what its [lend] policy gives, if it has been\n"
            "                  idle, and returns the device memory to the driver\n"
            "\n"
            "--ledger lists, per GPU, this user's processes in the GPU's ledger "
            "(docs/lending.md):\n"
            "pid, stage, live, cached, demoted and lendable bytes, the age of the last update\n"
            "and the control socket; --json prints them as JSON.\n"
            "\n"
            "Exit status: 0 done, 1 the process refused (its error is printed) or cannot be\n"
            "reached, 2 bad usage.\n");
}

/* Connects to the first socket of pid that exists (XDG_RUNTIME_DIR, then /tmp). */
int vs_ctl_connect(long pid)
{
    char tried[2][108] = {"", ""};
    for (int i = 0; i < 2; i++) {
        char dir[108];
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (!vs_ctl_dir(dir, sizeof dir, i == 0) ||
            !vs_ctl_socket_path(addr.sun_path, sizeof addr.sun_path, dir, pid))
            continue;
        snprintf(tried[i], sizeof tried[i], "%s", addr.sun_path);
        struct stat st;
        if (stat(addr.sun_path, &st) != 0)
            continue;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        fprintf(stderr, "vramshim ctl: cannot connect to %s: %s\n", addr.sun_path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        fprintf(stderr, "vramshim ctl: no process %ld\n", pid);
    else {
        /* The process chose its socket's directory from its own XDG_RUNTIME_DIR. */
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        fprintf(stderr,
                "vramshim ctl: process %ld has no control socket where this shell looks (%s%s%s; "
                "XDG_RUNTIME_DIR is %s%s%s here). Start it with VRAMSHIM_CTL=1 or ctl = on in its "
                "policy; if it was, it had another XDG_RUNTIME_DIR: run vramshim ctl with that "
                "one\n",
                pid, tried[0], *tried[0] ? " and " : "", tried[1], xdg ? "'" : "",
                xdg ? xdg : "unset", xdg ? "'" : "");
    }
    return -1;
}

/* Sends the request and reads the one-line reply (malloc'ed, without newline). */
char *vs_ctl_exchange(int fd, const char *req)
{
    size_t len = strlen(req);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        fprintf(stderr, "vramshim ctl: cannot send the request: %s\n", strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (buf) {
        /* One bound for the whole reply, however slowly it trickles in. */
        clock_gettime(CLOCK_MONOTONIC, &t);
        long long spent = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (spent >= VS_CTL_REPLY_TIMEOUT_MS ||
            poll(&p, 1, (int)(VS_CTL_REPLY_TIMEOUT_MS - spent)) <= 0) {
            fprintf(stderr, "vramshim ctl: no reply within %d s\n", VS_CTL_REPLY_TIMEOUT_MS / 1000);
            break;
        }
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                break;
            buf = bigger;
        }
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            fprintf(stderr, "vramshim ctl: the process closed the connection without a reply\n");
            break;
        }
        n += (size_t)r;
        char *nl = memchr(buf, '\n', n);
        if (nl) {
            *nl = '\0';
            return buf;
        }
    }
    free(buf);
    return NULL;
}

static int vs_ctl_print(const char *cmd, const char *reply_text)
{
    json_error_t err;
    json_t *reply = json_loads(reply_text, 0, &err);
    if (!json_is_object(reply)) {
        fprintf(stderr, "vramshim ctl: malformed reply: %s\n", reply_text);
        json_decref(reply);
        return 1;
    }
    int rc = 0;
    if (!json_is_true(json_object_get(reply, "ok"))) {
        const char *e = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, "vramshim ctl: %s\n", e ? e : reply_text);
        rc = 1;
    } else if (!strcmp(cmd, "status")) {
        char *pretty = json_dumps(json_object_get(reply, "status"), JSON_INDENT(2));
        printf("%s\n", pretty ? pretty : reply_text);
        free(pretty);
    } else if (!strcmp(cmd, "lend")) {
        const char *refused = json_string_value(json_object_get(reply, "refused"));
        if (refused)
            printf("lent nothing: %s\n", refused);
        else
            printf("demoted %lld bytes, released %lld bytes to the driver\n",
                   (long long)json_integer_value(json_object_get(reply, "demoted_bytes")),
                   (long long)json_integer_value(json_object_get(reply, "released_bytes")));
    } else if (!strcmp(cmd, "demote") || !strcmp(cmd, "promote")) {
        printf("%sd %lld bytes\n", cmd,
               (long long)json_integer_value(json_object_get(reply, "moved_bytes")));
    } else {
        printf("stage %s %s\n", json_string_value(json_object_get(reply, "stage")),
               !strcmp(cmd, "stage") ? "begun" : "ended");
    }
    json_decref(reply);
    return rc;
}

int vs_cmd_ctl(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        vs_ctl_usage(stdout);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "--ledger") || !strcmp(argv[1], "--json"))) {
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "--ledger"))
                return vs_ctl_ledger(argc - 1, argv + 1);
    }
    if (argc < 3) {
        vs_ctl_usage(stderr);
        return 2;
    }
    char *end;
    errno = 0;
    long pid = strtol(argv[1], &end, 10);
    if (errno || end == argv[1] || *end || pid <= 0) {
        fprintf(stderr, "vramshim ctl: '%s' is not a process id\n", argv[1]);
        return 2;
    }
    const char *cmd = argv[2];
    bool named = strcmp(cmd, "status") != 0;
    bool sized = !strcmp(cmd, "lend");
    if (named && !sized && strcmp(cmd, "stage") && strcmp(cmd, "stage-end") &&
        strcmp(cmd, "demote") && strcmp(cmd, "promote")) {
        fprintf(stderr, "vramshim ctl: unknown command '%s' (expected stage, stage-end, status, "
                        "demote, promote or lend)\n", cmd);
        return 2;
    }
    if (argc != (named ? 4 : 3)) {
        fprintf(stderr, "vramshim ctl: '%s' takes %s\n", cmd,
                sized ? "one SIZE" : named ? "one NAME" : "no argument");
        return 2;
    }
    char arg[32];
    uint64_t size;
    if (sized) {
        if (vs_policy_size_parse(argv[3], &size) != VS_SIZE_OK || size > VS_CTL_LEND_MAX) {
            fprintf(stderr, "vramshim ctl: lend: '%s' is not a size up to 1 PiB (4096, 512MiB, "
                            "2GiB)\n", argv[3]);
            return 2;
        }
        snprintf(arg, sizeof arg, "%llu", (unsigned long long)size);
    }
    char req[VS_CTL_MAX_REQUEST];
    int k = snprintf(req, sizeof req, "%s%s%s\n", cmd, named ? " " : "",
                     sized ? arg : named ? argv[3] : "");
    if (k < 0 || (size_t)k >= sizeof req) {
        fprintf(stderr, "vramshim ctl: NAME is too long\n");
        return 2;
    }
    int fd = vs_ctl_connect(pid);
    if (fd < 0)
        return 1;
    char *reply = vs_ctl_exchange(fd, req);
    close(fd);
    int rc = reply ? vs_ctl_print(cmd, reply) : 1;
    free(reply);
    return rc;
}
