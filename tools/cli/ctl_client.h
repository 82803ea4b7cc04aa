/* The client side of the control socket (cmd_ctl.c), shared by `vramshim ctl` and `vramshim
 * top`. Errors are printed on stderr as one "vramshim ctl: ..." line. */
#ifndef VS_CLI_CTL_CLIENT_H
#define VS_CLI_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "allocator/ledger.h"

/* Connects to the control socket of pid; -1 (after printing why) when it cannot. */
int vs_ctl_connect(long pid);

/* Sends req (one line, with its newline) and returns the one-line reply without its newline
 * (malloc'ed), NULL (after printing why) when none came. */
char *vs_ctl_exchange(int fd, const char *req);

/* `vramshim ctl --ledger [--json]` (ctl_ledger.c), argv from "--ledger" or "--json". */
int vs_ctl_ledger(int argc, char **argv);

/* Calls fn for each GPU's ledger in the user's ledger directory (its path in dir[dirlen]) with
 * its live entries. A ledger that cannot be read or is refused gets its line on stderr and sets
 * *failed. Returns the ledgers found, -1 when the directory cannot be read (said on stderr). */
typedef void (*vs_ledger_fn)(void *ctx, const char *uuid, const char *path,
                             const struct vs_ledger_entry *v, size_t n);
int vs_ledger_walk(vs_ledger_fn fn, void *ctx, char *dir, size_t dirlen, bool *failed);

/* s, a string a peer wrote in the ledger, with control characters as '?', in buf[len]. */
const char *vs_ledger_printable(const char *s, char *buf, size_t len);

#endif
