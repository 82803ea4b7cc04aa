/* See file.h. */
#include "policy/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *vs_file_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

int vs_open_regular(const char *path, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -2;
    if (fstat(fd, &st)) {
        snprintf(why, whylen, "%s", strerror(errno));
        rc = -1;
    } else if (S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "is a directory");
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "is %s, not a regular file", vs_file_kind(st.st_mode));
    } else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
        snprintf(why, whylen, "%s", strerror(errno));
        rc = -1;
    } else {
        return fd;
    }
    close(fd);
    return rc;
}
