/* The client side of the control socket (cmd_ctl.c), shared by `vramshim ctl` and `vramshim
 * top`. Errors are printed on stderr as one "vramshim ctl: ..." line. */
#ifndef VS_CLI_CTL_CLIENT_H
#define VS_CLI_CTL_CLIENT_H

/* Connects to the control socket of pid; -1 (after printing why) when it cannot. */
int vs_ctl_connect(long pid);

/* Sends req (one line, with its newline) and returns the one-line reply without its newline
 * (malloc'ed), NULL (after printing why) when none came. */
char *vs_ctl_exchange(int fd, const char *req);

/* `vramshim ctl --ledger [--json]` (ctl_ledger.c), argv from "--ledger" or "--json". */
int vs_ctl_ledger(int argc, char **argv);

#endif
