/* The per-GPU ledger: file checks, locking, validation and the entry operations (invariants in
 * allocator/ledger.h). */
#include "allocator/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "allocator/internal.h"

#define MAGIC "VSLEDGER"
#define VERSION 1

struct header {
    char magic[8];
    uint32_t version;
    uint32_t entry_size;
    uint32_t count;
    uint32_t reserved;
    uint64_t checksum; /* FNV-1a of the header with this field 0, then of the entries */
    char uuid[VS_LEDGER_UUID_LEN];
};

/* The file format is these structs' bytes: pin their sizes (an entry has 4 bytes of tail padding,
 * kept zero by vs_ledger_publish). */
_Static_assert(sizeof(struct header) == 96, "ledger header layout");
_Static_assert(sizeof(struct vs_ledger_entry) == 200, "ledger entry layout");

/* The whole file as read: header and entries. */
struct image {
    struct header h;
    struct vs_ledger_entry e[VS_LEDGER_ENTRIES];
};

struct vs_ledger {
    int dirfd;
    int timeout_ms;
    char uuid[VS_LEDGER_UUID_LEN];
    char name[VS_LEDGER_UUID_LEN + 16]; /* "gpu-UUID.ledger" */
    char path[4096];
    char error[512];
};

/* Sets the handle's `vramshim: ...` error line; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct vs_ledger *l, const char *fmt, ...)
{
    int n = snprintf(l->error, sizeof l->error, "vramshim: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->error + n, sizeof l->error - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- processes ------------------------------------------------------------------------------ */

uint64_t vs_ledger_proc_start(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && st.st_uid == geteuid() ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* "pid (comm) S ...": comm may hold anything, so fields count from the last ')'. Field 22 is
     * the start time. */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    unsigned long long start = 0;
    int fields = sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                               "%*s %*s %*s %llu",
                        &start);
    return fields == 1 ? start : 0;
}

static bool entry_alive(const struct vs_ledger_entry *e)
{
    return e->start_time != 0 && vs_ledger_proc_start(e->pid) == e->start_time;
}

/* ---- the file ------------------------------------------------------------------------------- */

static uint64_t checksum(const struct image *im)
{
    struct header h = im->h;
    h.checksum = 0;
    uint64_t sum = 0xcbf29ce484222325ULL;
    const unsigned char *parts[] = {(const unsigned char *)&h, (const unsigned char *)im->e};
    size_t lens[] = {sizeof h, (size_t)im->h.count * sizeof im->e[0]};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lens[k]; i++)
            sum = (sum ^ parts[k][i]) * 0x100000001b3ULL;
    return sum;
}

static bool terminated(const char *s, size_t len)
{
    return memchr(s, 0, len) != NULL;
}

/* Checks the owner and mode of an open directory or file. */
static int check_owner(struct vs_ledger *l, int fd, const char *what, const char *path, bool dir)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(l, "ledger %s %s: fstat: %s", what, path, strerror(errno));
    if (st.st_uid != geteuid())
        return fail(l, "ledger %s %s: owned by uid %u, not this user (%u): refused", what, path,
                    (unsigned)st.st_uid, (unsigned)geteuid());
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return fail(l, "ledger %s %s: not a %s: refused", what, path,
                    dir ? "directory" : "regular file");
    if (st.st_mode & 077)
        return fail(l, "ledger %s %s: has mode %04o, expected %s (this user only): refused", what,
                    path, (unsigned)(st.st_mode & 07777), dir ? "0700" : "0600");
    return 0;
}

/* Whether the image of `size` bytes is not a ledger of this GPU; why says why. */
static bool invalid(const struct vs_ledger *l, const struct image *im, size_t size, char *why,
                    size_t len)
{
    const struct header *h = &im->h;
    why[0] = 0;
    if (size < sizeof *h)
        snprintf(why, len, "truncated: %zu bytes", size);
    else if (memcmp(h->magic, MAGIC, sizeof h->magic) != 0)
        snprintf(why, len, "bad magic");
    else if (h->version != VERSION || h->entry_size != sizeof im->e[0])
        snprintf(why, len, "version %u with %u-byte entries, expected %u with %zu", h->version,
                 h->entry_size, VERSION, sizeof im->e[0]);
    else if (h->count > VS_LEDGER_ENTRIES)
        snprintf(why, len, "%u entries, at most %d", h->count, VS_LEDGER_ENTRIES);
    else if (size != sizeof *h + (size_t)h->count * sizeof im->e[0])
        snprintf(why, len, "%zu bytes for %u entries", size, h->count);
    else if (!terminated(h->uuid, sizeof h->uuid) || strcmp(h->uuid, l->uuid) != 0)
        snprintf(why, len, "made for another GPU");
    else if (h->checksum != checksum(im))
        snprintf(why, len, "bad checksum");
    for (uint32_t i = 0; !why[0] && i < h->count; i++) {
        const struct vs_ledger_entry *e = &im->e[i];
        if (e->pid <= 0 || e->reserved || !terminated(e->stage, sizeof e->stage) ||
            !terminated(e->socket, sizeof e->socket))
            snprintf(why, len, "entry %u malformed", i);
    }
    return why[0] != 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
}

/* Opens and locks the file; the fd or -1. */
static int lock_file(struct vs_ledger *l)
{
    int fd = openat(l->dirfd, l->name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(l, "ledger %s: %s", l->path, strerror(errno));
    if (check_owner(l, fd, "file", l->path, false) != 0) {
        close(fd);
        return -1;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            fail(l, "ledger %s: flock: %s", l->path, strerror(errno));
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >=
            l->timeout_ms) {
            fail(l, "ledger %s: locked by another process for more than %d ms", l->path,
                 l->timeout_ms);
            break;
        }
        sleep_ms(1);
    }
    close(fd);
    return -1;
}

/* Reads the ledger (rebuilt empty when invalid) and drops the entries of dead processes. */
static int load(struct vs_ledger *l, int fd, struct image *im)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(l, "ledger %s: fstat: %s", l->path, strerror(errno));
    size_t size = (size_t)st.st_size;
    memset(im, 0, sizeof *im);
    if (size > 0) {
        size_t want = size < sizeof *im ? size : sizeof *im;
        ssize_t got = pread(fd, im, want, 0);
        if (got < 0)
            return fail(l, "ledger %s: read: %s", l->path, strerror(errno));
        char why[128];
        if (size > sizeof *im)
            snprintf(why, sizeof why, "%zu bytes, larger than any ledger", size);
        if (size > sizeof *im || invalid(l, im, (size_t)got, why, sizeof why)) {
            vs_log(VS_LOG_WARN, "ledger %s: corrupt (%s): rebuilt", l->path, why);
            memset(im, 0, sizeof *im);
        }
    }
    memcpy(im->h.magic, MAGIC, sizeof im->h.magic);
    im->h.version = VERSION;
    im->h.entry_size = sizeof im->e[0];
    snprintf(im->h.uuid, sizeof im->h.uuid, "%s", l->uuid);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < im->h.count; i++)
        if (entry_alive(&im->e[i]))
            im->e[kept++] = im->e[i];
    im->h.count = kept;
    return 0;
}

static int store(struct vs_ledger *l, int fd, struct image *im)
{
    im->h.checksum = checksum(im);
    size_t size = sizeof im->h + (size_t)im->h.count * sizeof im->e[0];
    if (pwrite(fd, im, size, 0) != (ssize_t)size || ftruncate(fd, (off_t)size) != 0)
        return fail(l, "ledger %s: write: %s", l->path, strerror(errno));
    return 0;
}

/* Index of this process's entry, or -1. */
static int own_index(const struct image *im)
{
    int pid = getpid();
    for (uint32_t i = 0; i < im->h.count; i++)
        if (im->e[i].pid == pid)
            return (int)i; /* alive and this user's: load() dropped any older owner of the pid */
    return -1;
}

enum op { OP_PUBLISH, OP_REMOVE, OP_LIST };

/* One locked read-modify-write. */
static int transact(struct vs_ledger *l, enum op op, const struct vs_ledger_entry *mine,
                    struct vs_ledger_entry *out, size_t cap)
{
    int fd = lock_file(l);
    if (fd < 0)
        return -1;
    struct image *im = malloc(sizeof *im);
    int rc = im ? load(l, fd, im) : fail(l, "ledger %s: out of memory", l->path);
    if (rc == 0) {
        int own = own_index(im);
        if (op == OP_PUBLISH) {
            if (own < 0 && im->h.count == VS_LEDGER_ENTRIES)
                rc = fail(l, "ledger %s: full (%d live processes)", l->path, VS_LEDGER_ENTRIES);
            else
                memcpy(&im->e[own < 0 ? (int)im->h.count++ : own], mine, sizeof *mine);
        } else if (op == OP_REMOVE && own >= 0) {
            im->e[own] = im->e[--im->h.count];
        }
        if (op == OP_LIST) {
            memcpy(out, im->e, (cap < im->h.count ? cap : im->h.count) * sizeof *out);
            rc = (int)im->h.count;
        }
        if (rc >= 0 && store(l, fd, im) != 0)
            rc = -1;
    }
    free(im);
    close(fd); /* releases the lock */
    return rc;
}

int vs_ledger_publish(struct vs_ledger *l, const struct vs_ledger_entry *e)
{
    if (!terminated(e->stage, sizeof e->stage) || !terminated(e->socket, sizeof e->socket))
        return fail(l, "ledger %s: stage or socket name not terminated", l->path);
    /* Built from zero, so no byte of the caller's (padding, string tails) reaches the file. */
    struct vs_ledger_entry mine;
    memset(&mine, 0, sizeof mine);
    mine.pid = getpid();
    mine.start_time = vs_ledger_proc_start(mine.pid);
    if (!mine.start_time)
        return fail(l, "ledger %s: cannot read this process's start time", l->path);
    mine.live = e->live;
    mine.cached = e->cached;
    mine.demoted = e->demoted;
    mine.lendable = e->lendable;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    mine.updated_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    memcpy(mine.stage, e->stage, strlen(e->stage));
    memcpy(mine.socket, e->socket, strlen(e->socket));
    return transact(l, OP_PUBLISH, &mine, NULL, 0);
}

int vs_ledger_remove(struct vs_ledger *l)
{
    return transact(l, OP_REMOVE, NULL, NULL, 0);
}

int vs_ledger_list(struct vs_ledger *l, struct vs_ledger_entry *out, size_t cap)
{
    return transact(l, OP_LIST, NULL, out, cap);
}

/* ---- opening -------------------------------------------------------------------------------- */

static bool valid_uuid(const char *uuid)
{
    size_t n = strlen(uuid);
    return n > 0 && n < VS_LEDGER_UUID_LEN &&
           strspn(uuid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

int vs_ledger_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && xdg[0] == '/' ? snprintf(buf, len, "%s/vramshim", xdg)
                                 : snprintf(buf, len, "/tmp/vramshim-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= len)
        return -1;
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

struct vs_ledger *vs_ledger_open(const char *dir, const char *gpu_uuid, int timeout_ms, char *err,
                                 size_t errlen)
{
    struct vs_ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "vramshim: ledger: out of memory");
        return NULL;
    }
    l->dirfd = -1;
    l->timeout_ms = timeout_ms > 0 ? timeout_ms : VS_LEDGER_TIMEOUT_MS;
    char dirbuf[sizeof l->path - sizeof l->name - 1];
    if (!valid_uuid(gpu_uuid)) {
        fail(l, "ledger: GPU UUID \"%.80s\": expected 1 to %d letters, digits or '-'", gpu_uuid,
             VS_LEDGER_UUID_LEN - 1);
    } else if (!dir && vs_ledger_dir(dirbuf, sizeof dirbuf) != 0) {
        fail(l, "ledger directory %s: cannot create it: %s", dirbuf, strerror(errno));
    } else {
        if (!dir)
            dir = dirbuf;
        snprintf(l->uuid, sizeof l->uuid, "%s", gpu_uuid);
        snprintf(l->name, sizeof l->name, "gpu-%s.ledger", gpu_uuid);
        snprintf(l->path, sizeof l->path, "%.*s/%s", (int)(sizeof l->path - sizeof l->name - 1),
                 dir, l->name);
        l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (l->dirfd < 0)
            fail(l, "ledger directory %s: %s", dir, strerror(errno));
        else if (check_owner(l, l->dirfd, "directory", dir, true) == 0) {
            int fd = lock_file(l); /* the file's own checks, now rather than at first use */
            if (fd >= 0) {
                close(fd);
                return l;
            }
        }
    }
    snprintf(err, errlen, "%s", l->error);
    vs_ledger_close(l);
    return NULL;
}

void vs_ledger_close(struct vs_ledger *l)
{
    if (!l)
        return;
    if (l->dirfd >= 0)
        close(l->dirfd);
    free(l);
}

const char *vs_ledger_path(const struct vs_ledger *l)
{
    return l->path;
}

const char *vs_ledger_error(const struct vs_ledger *l)
{
    return l->error;
}
