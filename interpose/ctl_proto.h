/* The control socket's protocol, shared by the shim's server (ctl_server.c, ctl_proto.c) and
 * `vramshim ctl` (tools/cli/cmd_ctl.c; header-only there, as the CLI does not link the shim).
 *
 * A client connects to the process's socket, sends one request line and reads one reply line,
 * then the server closes the connection.
 *   request: "CMD[ ARG]\n", at most VS_CTL_MAX_REQUEST bytes with the newline, printable ASCII:
 *            "stage NAME", "stage-end NAME", "status", "demote NAME", "promote NAME"
 *   reply:   one JSON object and "\n": {"ok":true,...} or {"ok":false,"error":"MESSAGE"}
 * A malformed, oversized or unknown request gets an error reply and changes nothing.
 *
 * Socket: $XDG_RUNTIME_DIR/vramshim/PID.sock, or /tmp/vramshim-UID/PID.sock without
 * XDG_RUNTIME_DIR; the directory is 0700 and the socket 0600, both owned by the process's uid.
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

/* Server side (ctl_proto.c): the reply (compact JSON, no newline, malloc'ed) to one request line
 * of len bytes (without its newline). NULL only when out of memory. */
char *vs_ctl_handle(const char *line, size_t len);

/* An error reply for a request that could not be read (malloc'ed; NULL when out of memory). */
char *vs_ctl_error(const char *message);

#endif
