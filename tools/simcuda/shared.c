/* simcuda shared device (SIMCUDA_SHARED=NAME): processes on one simulated GPU draw from one
 * capacity, as processes on a real GPU do.
 *
 * The capacity lives in a POSIX shared-memory segment /simcuda-UID-NAME (mode 0600, the user's
 * own): the device count and size, and one slot per attached process {pid, start time, bytes
 * charged per device}. A device allocation is charged to the creating process's slot only if all
 * processes' charges plus it fit the device; a release uncharges it.
 *
 * Invariants:
 * - Every read or write of the slots happens under the segment's robust, process-shared mutex,
 *   taken with a timeout (LOCK_TIMEOUT_S) and only while vs_sim_mem_lock is held (a leaf of
 *   sim.h's lock order). A process writes only its own slot, except that it may claim a free slot
 *   and clear the slot of a dead process; so when a lock holder dies (EOWNERDEAD) the only slot it
 *   may have left half-written is its own, which the survivor then clears as dead.
 * - A slot is dead when its pid is gone, a zombie, or now names another process (the start time
 *   in /proc/PID/stat differs): its charges go back to the device (`reclaimed` counts them).
 * - Memory is charged to the process that created it: a child forked after cuInit claims a slot of
 *   its own when it first allocates, and slices created before the fork stay the parent's charge
 *   (physical.c uncharges only slices created in this process).
 * - The segment is trusted only after it passed attach_checks(): owned by this uid, mode 0600, a
 *   regular file of exactly sizeof(struct segment), the magic, version and header checksum right,
 *   every slot's charge within the device size. The creator publishes the magic last.
 * - Device count and size are fixed while any process is attached; a process asking for others is
 *   refused. A segment with no live process takes the configuration of the next one to attach.
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC 0x3153444541485353ULL /* "SSHAEDS1" little-endian, any non-zero value */
#define SEG_VERSION 1
#define SEG_PROCS 64
#define LOCK_TIMEOUT_S 5
#define READY_TIMEOUT_MS 2000
#define NAME_MAX_LEN 64

struct slot {
    int32_t pid; /* 0: free */
    uint32_t pad;
    uint64_t start; /* the process's start time (clock ticks after boot), against pid reuse */
    uint64_t used[VS_SIM_MAX_DEVICES];
};

struct segment {
    uint64_t magic; /* written last by the creator */
    uint32_t version, size;
    uint32_t uid;
    int32_t devices;
    uint64_t vram;
    uint64_t header_sum; /* of version, size, uid, devices and vram */
    pthread_mutex_t mu;
    uint64_t reclaimed[VS_SIM_MAX_DEVICES]; /* bytes taken back from dead processes */
    struct slot slots[SEG_PROCS];
};

static struct segment *seg; /* NULL: not shared */
static char seg_label[128]; /* "SIMCUDA_SHARED=NAME (/dev/shm/simcuda-UID-NAME)" for messages */
static int my_slot = -1;
static pid_t my_slot_pid;

bool vs_sim_shared_enabled(void)
{
    return seg != NULL;
}

static uint64_t header_sum(const struct segment *s)
{
    uint64_t fields[] = {s->version, s->size, s->uid, (uint64_t)(uint32_t)s->devices, s->vram};
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    const unsigned char *p = (const unsigned char *)fields;
    for (size_t i = 0; i < sizeof fields; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Start time of pid (field 22 of /proc/PID/stat), 0 if it is gone or a zombie. */
static uint64_t proc_start(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    p += 2;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

static bool slot_alive(const struct slot *sl)
{
    if (sl->pid <= 0)
        return false;
    if (kill(sl->pid, 0) != 0 && errno == ESRCH)
        return false;
    return proc_start(sl->pid) == sl->start;
}

static int lock_segment(void)
{
    struct timespec deadline;
#ifdef __SANITIZE_THREAD__
    /* GCC 12's TSan does not intercept pthread_mutex_clocklock: it would not see the lock taken
     * and report its unlock (make tsan). The realtime clock serves it as well for a 5 s bound. */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += LOCK_TIMEOUT_S;
    int rc = pthread_mutex_timedlock(&seg->mu, &deadline);
#else
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += LOCK_TIMEOUT_S;
    int rc = pthread_mutex_clocklock(&seg->mu, CLOCK_MONOTONIC, &deadline);
#endif
    if (rc == EOWNERDEAD) {
        /* The dead holder could only have been writing its own slot: reclaim_dead clears it. */
        vs_sim_log(VS_SIM_LOG_WARN, "%s: a process died holding the lock; recovering",
                   seg_label);
        pthread_mutex_consistent(&seg->mu);
        return 0;
    }
    if (rc != 0) {
        vs_sim_log(VS_SIM_LOG_ERROR, "%s: cannot take the lock: %s", seg_label,
                   rc == ETIMEDOUT ? "held by another process for 5 s" : strerror(rc));
        return -1;
    }
    return 0;
}

static void unlock_segment(void)
{
    pthread_mutex_unlock(&seg->mu);
}

/* Clears the slots of dead processes (lock held); returns how many live ones are left. */
static int reclaim_dead(void)
{
    int live = 0;
    for (int i = 0; i < SEG_PROCS; i++) {
        struct slot *sl = &seg->slots[i];
        if (sl->pid == 0)
            continue;
        if (i == my_slot && my_slot_pid == getpid()) {
            live++;
            continue;
        }
        if (slot_alive(sl)) {
            live++;
            continue;
        }
        for (int d = 0; d < VS_SIM_MAX_DEVICES; d++)
            seg->reclaimed[d] += sl->used[d];
        memset(sl, 0, sizeof *sl);
    }
    return live;
}

/* Takes a free slot for this process (lock held, dead slots reclaimed). */
static int claim_slot(void)
{
    pid_t pid = getpid();
    for (int i = 0; i < SEG_PROCS; i++) {
        struct slot *sl = &seg->slots[i];
        if (sl->pid != 0)
            continue;
        memset(sl, 0, sizeof *sl);
        sl->pid = pid;
        sl->start = proc_start(pid);
        my_slot = i;
        my_slot_pid = pid;
        return 0;
    }
    vs_sim_log(VS_SIM_LOG_ERROR, "%s: %d processes are attached already", seg_label, SEG_PROCS);
    return -1;
}

/* This process's slot (claiming one after a fork), lock held; NULL with a logged line if none. */
static struct slot *own_slot(void)
{
    if (my_slot_pid != getpid()) {
        reclaim_dead();
        if (claim_slot() != 0)
            return NULL;
    }
    return &seg->slots[my_slot];
}

/* Sum of the charges on dev (lock held). */
static size_t device_used(int dev)
{
    size_t sum = 0;
    for (int i = 0; i < SEG_PROCS; i++)
        if (seg->slots[i].pid != 0)
            sum += seg->slots[i].used[dev]; /* each is at most vram: checked at attach */
    return sum;
}

CUresult vs_sim_shared_charge(int dev, size_t size, size_t limit)
{
    if (lock_segment() != 0)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = CUDA_ERROR_OUT_OF_MEMORY;
    struct slot *mine = own_slot();
    if (mine) {
        size_t used = device_used(dev);
        if (size > (limit > used ? limit - used : 0)) { /* dead peers may be holding it */
            reclaim_dead();
            used = device_used(dev);
        }
        if (size <= (limit > used ? limit - used : 0)) {
            mine->used[dev] += size;
            rc = CUDA_SUCCESS;
        }
    }
    unlock_segment();
    return rc;
}

void vs_sim_shared_uncharge(int dev, size_t size)
{
    if (lock_segment() != 0)
        return; /* logged; the charge stays until this process exits */
    struct slot *mine = own_slot();
    if (mine)
        mine->used[dev] -= size < mine->used[dev] ? size : mine->used[dev];
    unlock_segment();
}

size_t vs_sim_shared_used(int dev, pid_t pid)
{
    if (lock_segment() != 0)
        return 0;
    reclaim_dead();
    size_t used = 0;
    for (int i = 0; i < SEG_PROCS; i++)
        if (seg->slots[i].pid != 0 && (pid == 0 || seg->slots[i].pid == pid))
            used += seg->slots[i].used[dev];
    unlock_segment();
    return used;
}

/* ---- attaching --------------------------------------------------------------------------- */

/* One `simcuda: SIMCUDA_SHARED=NAME (/dev/shm/...): why` line; returns -1. */
__attribute__((format(printf, 1, 2))) static int refuse(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vs_sim_log(VS_SIM_LOG_ERROR, "%s: %s", seg_label, msg);
    return -1;
}

static int init_segment(struct segment *s, const struct vs_sim_config *cfg)
{
    memset(s, 0, sizeof *s);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&s->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0)
        return refuse("cannot create its lock: %s", strerror(rc));
    s->version = SEG_VERSION;
    s->size = sizeof *s;
    s->uid = (uint32_t)geteuid();
    s->devices = cfg->devices;
    s->vram = cfg->vram;
    s->header_sum = header_sum(s);
    __atomic_store_n(&s->magic, SEG_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Checks what a file in /dev/shm claims before anything in it is believed. */
static int attach_checks(int fd, struct segment **out)
{
    struct stat st;
    for (int waited = 0;; waited++) { /* the creator sizes it right after creating it */
        if (fstat(fd, &st) != 0)
            return refuse("fstat: %s", strerror(errno));
        if (st.st_size != 0 || waited >= READY_TIMEOUT_MS)
            break;
        sleep_ms(1);
    }
    if (st.st_uid != geteuid())
        return refuse("owned by uid %u, not this user (%u): refused", (unsigned)st.st_uid,
                      (unsigned)geteuid());
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0777) != 0600)
        return refuse("has mode %04o, expected a regular file of mode 0600: refused",
                      (unsigned)(st.st_mode & 07777));
    if ((size_t)st.st_size != sizeof(struct segment))
        return refuse("corrupt or of another simcuda version (%lld bytes, expected %zu): refused",
                      (long long)st.st_size, sizeof(struct segment));
    struct segment *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s == MAP_FAILED)
        return refuse("mmap: %s", strerror(errno));
    for (int waited = 0; !__atomic_load_n(&s->magic, __ATOMIC_ACQUIRE) &&
                         waited < READY_TIMEOUT_MS;
         waited++)
        sleep_ms(1);
    const char *bad = NULL;
    if (s->magic != SEG_MAGIC)
        bad = s->magic ? "bad magic" : "never initialised (its creator died?)";
    else if (s->version != SEG_VERSION || s->size != sizeof *s)
        bad = "of another simcuda version";
    else if (s->header_sum != header_sum(s))
        bad = "bad header checksum";
    else if (s->uid != geteuid())
        bad = "made for another user";
    else if (s->devices < 1 || s->devices > VS_SIM_MAX_DEVICES || s->vram < VS_SIM_GRANULE)
        bad = "impossible device count or size";
    for (int i = 0; !bad && i < SEG_PROCS; i++)
        for (int d = 0; !bad && d < VS_SIM_MAX_DEVICES; d++)
            if (s->slots[i].used[d] > s->vram || (s->slots[i].pid < 0))
                bad = "a process slot out of range";
    if (bad) {
        munmap(s, sizeof *s);
        return refuse("corrupt (%s): refused; remove it if no process uses it", bad);
    }
    *out = s;
    return 0;
}

/* Same device count and size as the attached processes; adopts ours when none is left. */
static int agree_config(const struct vs_sim_config *cfg)
{
    if (seg->devices == cfg->devices && seg->vram == cfg->vram)
        return 0;
    if (reclaim_dead() == 0) {
        seg->devices = cfg->devices;
        seg->vram = cfg->vram;
        seg->header_sum = header_sum(seg);
        return 0;
    }
    return refuse("the attached processes have %d device(s) of %llu MiB while this process asks "
                  "for %d of %zu MiB (SIMCUDA_DEVICES and SIMCUDA_VRAM must match)",
                  seg->devices, (unsigned long long)(seg->vram >> 20), cfg->devices,
                  cfg->vram >> 20);
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name[i]))
            return false;
    return true;
}

int vs_sim_shared_attach(const struct vs_sim_config *cfg)
{
    const char *name = getenv("SIMCUDA_SHARED");
    if (!name)
        return 0;
    if (!valid_name(name)) {
        vs_sim_log(VS_SIM_LOG_ERROR,
                   "SIMCUDA_SHARED=\"%s\": expected 1 to %d letters, digits, '.', '_' or '-'", name,
                   NAME_MAX_LEN);
        return -1;
    }
    char shm_name[96];
    snprintf(shm_name, sizeof shm_name, "/simcuda-%u-%s", (unsigned)geteuid(), name);
    snprintf(seg_label, sizeof seg_label, "SIMCUDA_SHARED=%s (/dev/shm%s)", name, shm_name);
    struct segment *s = NULL;
    /* glibc's shm_open adds O_NOFOLLOW: a symlink planted under the name is not followed. */
    int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        if (fchmod(fd, 0600) != 0 || ftruncate(fd, sizeof *s) != 0) {
            refuse("cannot size it: %s", strerror(errno));
        } else {
            s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (s == MAP_FAILED) {
                s = NULL;
                refuse("mmap: %s", strerror(errno));
            } else if (init_segment(s, cfg) != 0) {
                munmap(s, sizeof *s);
                s = NULL;
            }
        }
        if (!s)
            shm_unlink(shm_name);
    } else if (errno == EEXIST) {
        fd = shm_open(shm_name, O_RDWR, 0);
        if (fd < 0)
            refuse("cannot open it: %s", strerror(errno));
        else
            attach_checks(fd, &s);
    } else {
        refuse("cannot create it: %s", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    if (!s)
        return -1;
    seg = s;
    int rc = lock_segment();
    if (rc == 0) {
        rc = agree_config(cfg);
        if (rc == 0)
            rc = own_slot() ? 0 : -1;
        unlock_segment();
    }
    if (rc != 0) {
        seg = NULL;
        munmap(s, sizeof *s);
        return -1;
    }
    vs_sim_log(VS_SIM_LOG_INFO, "%s: attached as process %d of the shared device", seg_label,
               (int)getpid());
    return 0;
}
