/* The per-GPU ledger (allocator/ledger.c): publishing, updating, removing and listing entries;
 * the runtime directory; refusal of directories and files that are not this user's alone; corrupt
 * files rebuilt; entries of dead processes dropped; several processes writing at once; a lock
 * held too long. (A file owned by another user cannot be made without privileges: the owner
 * check is the same fstat test as the mode check, made first.) */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "allocator/log.h"
#include "allocator/ledger.h"

#define UUID "GPU-1234abcd-0000"
#define HEADER_SIZE 96 /* magic, version, entry size, count, reserved, checksum, uuid */

static char dir[64];
static char path[128];
static char logged[8][512];
static int nlogged;

static void sink(const char *line)
{
    if (nlogged < 8)
        snprintf(logged[nlogged++], sizeof logged[0], "%s", line);
}

static void setup(void)
{
    alarm(60);
    snprintf(dir, sizeof dir, "/tmp/vs_ledger_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/gpu-" UUID ".ledger", dir);
    vs_log_set_sink(sink);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ledger, .init = setup, .fini = teardown);

static struct vs_ledger *open_ok(void)
{
    char err[512] = "";
    struct vs_ledger *l = vs_ledger_open(dir, UUID, 0, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    return l;
}

static void expect_refused(const char *dir_arg, const char *uuid, const char *want)
{
    char err[512] = "";
    cr_assert_null(vs_ledger_open(dir_arg, uuid, 0, err, sizeof err));
    cr_assert_str_eq(err, want);
}

static struct vs_ledger_entry entry(const char *stage, uint64_t live, uint64_t lendable)
{
    struct vs_ledger_entry e = {.live = live, .cached = 2, .demoted = 3, .lendable = lendable};
    snprintf(e.stage, sizeof e.stage, "%s", stage);
    snprintf(e.socket, sizeof e.socket, "/run/user/1/vramshim-%d.sock", (int)getpid());
    return e;
}

static int list(struct vs_ledger *l, struct vs_ledger_entry *out)
{
    int n = vs_ledger_list(l, out, VS_LEDGER_ENTRIES);
    cr_assert_geq(n, 0, "%s", vs_ledger_error(l));
    return n;
}

Test(ledger, published_entry_is_listed_with_its_identity)
{
    struct vs_ledger *l = open_ok();
    cr_assert_str_eq(vs_ledger_path(l), path);
    struct vs_ledger_entry e = entry("decode", 5 << 20, 1 << 20), got[VS_LEDGER_ENTRIES];
    cr_assert_eq(vs_ledger_publish(l, &e), 0, "%s", vs_ledger_error(l));
    cr_assert_eq(list(l, got), 1);
    cr_assert_eq(got[0].pid, getpid());
    cr_assert_eq(got[0].start_time, vs_ledger_proc_start(getpid()));
    cr_assert_neq(got[0].start_time, 0);
    cr_assert_gt(got[0].updated_ns, 0);
    cr_assert_str_eq(got[0].stage, "decode");
    cr_assert_str_eq(got[0].socket, e.socket);
    cr_assert_eq(got[0].live, 5 << 20);
    cr_assert_eq(got[0].cached, 2);
    cr_assert_eq(got[0].demoted, 3);
    cr_assert_eq(got[0].lendable, 1 << 20);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    vs_ledger_close(l);
}

Test(ledger, publishing_again_replaces_and_remove_removes)
{
    struct vs_ledger *l = open_ok();
    struct vs_ledger_entry e = entry("load", 1, 0), got[VS_LEDGER_ENTRIES];
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    e = entry("idle", 7, 7);
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    cr_assert_eq(list(l, got), 1);
    cr_assert_str_eq(got[0].stage, "idle");
    cr_assert_eq(got[0].live, 7);
    cr_assert_eq(vs_ledger_remove(l), 0);
    cr_assert_eq(list(l, got), 0);
    cr_assert_eq(vs_ledger_remove(l), 0, "removing twice is no error");
    vs_ledger_close(l);
}

Test(ledger, runtime_directory_is_made_private)
{
    setenv("XDG_RUNTIME_DIR", dir, 1);
    char err[512] = "";
    struct vs_ledger *l = vs_ledger_open(NULL, UUID, 0, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    char want[160];
    snprintf(want, sizeof want, "%s/vramshim/gpu-" UUID ".ledger", dir);
    cr_assert_str_eq(vs_ledger_path(l), want);
    struct stat st;
    snprintf(want, sizeof want, "%s/vramshim", dir);
    cr_assert_eq(stat(want, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    vs_ledger_close(l);
}

Test(ledger, a_shared_directory_is_refused)
{
    cr_assert_eq(chmod(dir, 0755), 0);
    char want[256];
    snprintf(want, sizeof want,
             "vramshim: ledger directory %s: has mode 0755, expected 0700 (this user only): "
             "refused",
             dir);
    expect_refused(dir, UUID, want);
}

Test(ledger, a_readable_file_is_refused_and_left_alone)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchmod(fd, 0644), 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    char want[256];
    snprintf(want, sizeof want,
             "vramshim: ledger file %s: has mode 0644, expected 0600 (this user only): refused",
             path);
    expect_refused(dir, UUID, want);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 1, "a refused file is not rewritten");
}

Test(ledger, a_symlink_is_not_followed)
{
    char target[160];
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    cr_assert_eq(symlink(target, path), 0);
    char want[256];
    snprintf(want, sizeof want, "vramshim: ledger %s: Too many levels of symbolic links", path);
    expect_refused(dir, UUID, want);
    cr_assert_eq(access(target, F_OK), -1, "nothing created through the link");
}

Test(ledger, a_bad_gpu_uuid_is_refused)
{
    expect_refused(dir, "../x",
                   "vramshim: ledger: GPU UUID \"../x\": expected 1 to 63 letters, digits or '-'");
}

/* ---- corrupt files ------------------------------------------------------------------------ */

/* A valid ledger holding this process's entry, damaged by `damage`; then the ledger must be
 * rebuilt empty with one line saying why, and work again. */
static void expect_rebuilt(void (*damage)(int fd), const char *why)
{
    struct vs_ledger *l = open_ok();
    struct vs_ledger_entry e = entry("load", 1, 0), got[VS_LEDGER_ENTRIES];
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    damage(fd);
    close(fd);
    nlogged = 0;
    cr_assert_eq(list(l, got), 0, "a corrupt ledger is not believed");
    cr_assert_eq(nlogged, 1);
    char want[512];
    snprintf(want, sizeof want, "vramshim: ledger %s: corrupt (%s): rebuilt", path, why);
    cr_assert_str_eq(logged[0], want);
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    cr_assert_eq(list(l, got), 1);
    cr_assert_eq(nlogged, 1, "the rebuilt ledger is valid");
    vs_ledger_close(l);
}

static void put_u32(int fd, off_t at, uint32_t v)
{
    cr_assert_eq(pwrite(fd, &v, sizeof v, at), (ssize_t)sizeof v);
}

static void truncate_10(int fd)
{
    cr_assert_eq(ftruncate(fd, 10), 0);
}
static void bad_magic(int fd)
{
    cr_assert_eq(pwrite(fd, "NOTLEDGR", 8, 0), 8);
}
static void flip_entry_byte(int fd)
{
    put_u32(fd, HEADER_SIZE + 24, 0xdead); /* inside the entry's live bytes */
}
static void huge_count(int fd)
{
    put_u32(fd, 16, 1000000);
}
static void count_beyond_file(int fd)
{
    put_u32(fd, 16, 2);
}
static void bad_version(int fd)
{
    put_u32(fd, 8, 99);
}
static void grow_1mib(int fd)
{
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
}

Test(ledger, truncated_file_is_rebuilt)
{
    expect_rebuilt(truncate_10, "truncated: 10 bytes");
}
Test(ledger, bad_magic_is_rebuilt)
{
    expect_rebuilt(bad_magic, "bad magic");
}
Test(ledger, bad_checksum_is_rebuilt)
{
    expect_rebuilt(flip_entry_byte, "bad checksum");
}
Test(ledger, entry_count_too_large_is_rebuilt)
{
    expect_rebuilt(huge_count, "1000000 entries, at most 64");
}
Test(ledger, entry_count_beyond_the_file_is_rebuilt)
{
    char why[64];
    snprintf(why, sizeof why, "%zu bytes for 2 entries",
             HEADER_SIZE + sizeof(struct vs_ledger_entry));
    expect_rebuilt(count_beyond_file, why);
}
Test(ledger, other_version_is_rebuilt)
{
    char why[96];
    snprintf(why, sizeof why, "version 99 with %zu-byte entries, expected 1 with %zu",
             sizeof(struct vs_ledger_entry), sizeof(struct vs_ledger_entry));
    expect_rebuilt(bad_version, why);
}
Test(ledger, oversized_file_is_rebuilt)
{
    expect_rebuilt(grow_1mib, "1048576 bytes, larger than any ledger");
}

Test(ledger, another_gpus_ledger_is_rebuilt)
{
    struct vs_ledger *l = open_ok();
    struct vs_ledger_entry e = entry("load", 1, 0), got[VS_LEDGER_ENTRIES];
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    vs_ledger_close(l);
    char other[160];
    snprintf(other, sizeof other, "%s/gpu-OTHER.ledger", dir);
    cr_assert_eq(rename(path, other), 0);
    char err[512];
    l = vs_ledger_open(dir, "OTHER", 0, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    nlogged = 0;
    cr_assert_eq(list(l, got), 0);
    char want[256];
    snprintf(want, sizeof want, "vramshim: ledger %s: corrupt (made for another GPU): rebuilt",
             other);
    cr_assert_str_eq(logged[0], want);
    vs_ledger_close(l);
}

/* ---- other processes ------------------------------------------------------------------------ */

/* A child that publishes an entry with live = tag, tells the parent and waits to be killed. */
static pid_t child_publisher(uint64_t tag)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
        close(p[0]);
        char err[512];
        struct vs_ledger *l = vs_ledger_open(dir, UUID, 0, err, sizeof err);
        struct vs_ledger_entry e = entry("child", tag, tag);
        char ok = l && vs_ledger_publish(l, &e) == 0 ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1)
            _exit(2);
        pause();
        _exit(0);
    }
    close(p[1]);
    char ok = 0;
    cr_assert_eq(read(p[0], &ok, 1), 1);
    close(p[0]);
    cr_assert_eq(ok, 'y', "the child could not publish");
    return pid;
}

Test(ledger, entries_of_dead_processes_are_dropped)
{
    struct vs_ledger *l = open_ok();
    struct vs_ledger_entry e = entry("parent", 1, 0), got[VS_LEDGER_ENTRIES];
    cr_assert_eq(vs_ledger_publish(l, &e), 0);
    pid_t a = child_publisher(10), b = child_publisher(20);
    cr_assert_eq(list(l, got), 3);
    kill(a, SIGKILL);
    for (int i = 0; i < 2000 && vs_ledger_proc_start(a) != 0; i++)
        usleep(1000);
    /* a is a zombie now, not reaped yet: it holds nothing any more */
    int n = list(l, got);
    cr_assert_eq(n, 2);
    for (int i = 0; i < n; i++)
        cr_assert_neq(got[i].pid, a);
    kill(b, SIGKILL);
    cr_assert_eq(waitpid(a, NULL, 0), a);
    cr_assert_eq(waitpid(b, NULL, 0), b);
    cr_assert_eq(list(l, got), 1);
    cr_assert_eq(got[0].pid, getpid());
    vs_ledger_close(l);
}

#define WRITERS 4
#define UPDATES 200

Test(ledger, concurrent_writers_lose_nothing)
{
    pid_t kids[WRITERS];
    int done[2];
    cr_assert_eq(pipe(done), 0);
    for (int k = 0; k < WRITERS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            char err[512];
            struct vs_ledger *l = vs_ledger_open(dir, UUID, 5000, err, sizeof err);
            int bad = !l;
            for (int i = 0; !bad && i < UPDATES; i++) {
                struct vs_ledger_entry e = entry("writer", (uint64_t)k * 1000 + (uint64_t)i, k);
                bad = vs_ledger_publish(l, &e) != 0;
            }
            bad |= nlogged != 0; /* a torn write would have been seen as corrupt */
            char c = bad ? 'n' : 'y';
            if (write(done[1], &c, 1) != 1)
                _exit(2);
            pause();
            _exit(0);
        }
    }
    close(done[1]);
    struct vs_ledger *l = vs_ledger_open(dir, UUID, 5000, (char[512]){0}, 512);
    cr_assert_not_null(l);
    struct vs_ledger_entry got[VS_LEDGER_ENTRIES];
    for (int k = 0; k < WRITERS; k++) {
        cr_assert_leq(list(l, got), WRITERS, "never more entries than writers");
        char c = 0;
        cr_assert_eq(read(done[0], &c, 1), 1);
        cr_assert_eq(c, 'y', "a writer failed or saw a corrupt ledger");
    }
    cr_assert_eq(list(l, got), WRITERS);
    for (int i = 0; i < WRITERS; i++) {
        int k = -1;
        for (int j = 0; j < WRITERS; j++)
            if (got[i].pid == kids[j])
                k = j;
        cr_assert_geq(k, 0, "entry of an unknown pid %d", got[i].pid);
        cr_assert_eq(got[i].live, (uint64_t)k * 1000 + UPDATES - 1, "writer %d's last update", k);
    }
    cr_assert_eq(nlogged, 0);
    for (int k = 0; k < WRITERS; k++) {
        kill(kids[k], SIGKILL);
        waitpid(kids[k], NULL, 0);
    }
    cr_assert_eq(list(l, got), 0);
    vs_ledger_close(l);
}

Test(ledger, a_lock_held_too_long_fails_the_call_instead_of_blocking)
{
    struct vs_ledger *l = open_ok();
    vs_ledger_close(l);
    char err[512];
    l = vs_ledger_open(dir, UUID, 50, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    int fd = open(path, O_RDWR);
    cr_assert_eq(flock(fd, LOCK_EX), 0);
    struct vs_ledger_entry e = entry("x", 1, 1);
    cr_assert_eq(vs_ledger_publish(l, &e), -1);
    char want[256];
    snprintf(want, sizeof want,
             "vramshim: ledger %s: locked by another process for more than 50 ms", path);
    cr_assert_str_eq(vs_ledger_error(l), want);
    close(fd);
    cr_assert_eq(vs_ledger_publish(l, &e), 0, "%s", vs_ledger_error(l));
    vs_ledger_close(l);
}

Test(ledger, unterminated_strings_are_refused)
{
    struct vs_ledger *l = open_ok();
    struct vs_ledger_entry e = entry("x", 1, 1);
    memset(e.stage, 'a', sizeof e.stage);
    cr_assert_eq(vs_ledger_publish(l, &e), -1);
    vs_ledger_close(l);
}
