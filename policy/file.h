/* Opening a file that must be regular (a policy, a trace to read) without ever blocking: a
 * FIFO without a writer would block open() and then the read, and with it the host program's
 * start-up. The file is opened with O_NONBLOCK, checked with fstat, then made blocking again. */
#ifndef VS_POLICY_FILE_H
#define VS_POLICY_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* What kind of file mode is, for messages: "a directory", "a FIFO", "a character device", ... */
const char *vs_file_kind(mode_t mode);

/* Opens path read-only (O_CLOEXEC). Returns the descriptor; -1 when the system refused
 * (strerror's text in why), -2 when path is no regular file ("is a directory", "is a FIFO, not
 * a regular file", ... in why). why never holds the path. */
int vs_open_regular(const char *path, char *why, size_t whylen);

#endif
