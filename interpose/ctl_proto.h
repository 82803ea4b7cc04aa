/* The control socket's protocol, shared by the shim's server (ctl_server.c, ctl_proto.c) and
 * `vramshim ctl` (tools/cli/cmd_ctl.c; header-only there, as the CLI does not link the shim).
 *
 * A client connects to the process's socket, sends one request line and reads one reply line,
 * then the server closes the connection.
 *   request: "CMD[ ARG]\n", at most VS_CTL_MAX_REQUEST bytes with the newline, printable ASCII:
 *            "stage NAME", "stage-end NAME", "status", "demote NAME", "promote NAME",
 *            "lend BYTES" (a peer on the same GPU asks for memory, lend.h; the reply has
 *            asked_bytes, demoted_bytes, released_bytes and, when nothing was tried, refused)
 *   reply:   one JSON object and "\n": {"ok":true,...} or {"ok":false,"error":"MESSAGE"}
 * A malformed, oversized or unknown request gets an error reply and changes nothing. Limits (each
 * answered with an error reply, then the connection is closed): the request line must be complete
 * within VS_CTL_TIMEOUT_MS of the connect (the whole request, not each read); an oversized one is
 * answered at once, and what the client sends after it, up to the newline and at most
 * VS_CTL_DISCARD_MAX bytes, is read and dropped so the client can read the reply; the reply must
 * be taken within VS_CTL_TIMEOUT_MS of being ready.
 *
 * Socket: $XDG_RUNTIME_DIR/vramshim/PID.sock, or /tmp/vramshim-UID/PID.sock without
 * XDG_RUNTIME_DIR or when the first path is too long for a socket (the server says so); the
 * directory is 0700 and the socket 0600, both owned by the process's uid.
 */
#ifndef VS_INTERPOSE_CTL_PROTO_H
#define VS_INTERPOSE_CTL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define VS_CTL_MAX_REQUEST 256
#define VS_CTL_TIMEOUT_MS 2000
#define VS_CTL_DISCARD_MAX (1u << 20)
#define VS_CTL_LEND_MAX (1ull << 50) /* bytes a lend request may name: 1 PiB */

/* The socket directory, from XDG_RUNTIME_DIR when use_xdg and it is set. False when the path
 * does not fit n bytes (or use_xdg without the variable). */
static inline bool vs_ctl_dir(char *buf, size_t n, bool use_xdg)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int k = use_xdg ? (xdg && *xdg ? snprintf(buf, n, "%s/vramshim", xdg) : -1)
                    : snprintf(buf, n, "/tmp/vramshim-%u", (unsigned)geteuid());
    return k > 0 && (size_t)k < n;
}

/* The socket of process pid in dir; false when it does not fit n bytes. */
static inline bool vs_ctl_socket_path(char *buf, size_t n, const char *dir, long pid)
{
    int k = snprintf(buf, n, "%s/%ld.sock", dir, pid);
    return k > 0 && (size_t)k < n;
}

/* Server side (ctl_proto.c). A request line as it arrives, in pieces of any size. */
struct vs_ctl_request {
    char line[VS_CTL_MAX_REQUEST];
    size_t len; /* bytes of line received (no newline yet) */
};

enum vs_ctl_fed {
    VS_CTL_MORE,     /* no newline yet: feed more */
    VS_CTL_LINE,     /* line[0..len) is the complete request, without its newline */
    VS_CTL_TOO_LONG, /* VS_CTL_MAX_REQUEST bytes without a newline */
};

/* Appends n received bytes; *used says how many were taken (bytes after the newline, or after
 * the limit, are not the request's). */
enum vs_ctl_fed vs_ctl_feed(struct vs_ctl_request *r, const char *data, size_t n, size_t *used);

/* The error reply texts for requests that could not be read. */
#define VS_CTL_ERR_TOO_LONG "request too long (at most 255 bytes and a newline)"
#define VS_CTL_ERR_INCOMPLETE "incomplete request (expected one line ending in a newline)"
#define VS_CTL_ERR_TIMEOUT "incomplete request: no newline within 2 s of connecting"

/* The reply (compact JSON, no newline, malloc'ed) to one request line
 * of len bytes (without its newline) from process peer_pid (SO_PEERCRED; named in the lend
 * line). NULL only when out of memory. */
char *vs_ctl_handle(const char *line, size_t len, int peer_pid);

/* An error reply for a request that could not be read (malloc'ed; NULL when out of memory). */
char *vs_ctl_error(const char *message);

#endif
