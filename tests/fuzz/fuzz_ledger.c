/* libFuzzer target: the per-GPU ledger (allocator/ledger.c) reading a file another process of the
 * same user may have written, or half written. The input is the ledger file's content. Whatever
 * it holds, listing must succeed with at most VS_LEDGER_ENTRIES entries of live processes with
 * terminated strings (a corrupt file is rebuilt), and publishing this process's entry must then
 * work and show up exactly once. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocator/log.h"
#include "allocator/ledger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UUID "GPU-fuzz"

static char dir[64], path[128];

static void quiet(const char *line)
{
    (void)line; /* "corrupt: rebuilt" lines are expected here */
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

static void check_listing(const struct vs_ledger_entry *e, int n, int own_expected)
{
    if (n < 0 || n > VS_LEDGER_ENTRIES)
        abort();
    int own = 0;
    for (int i = 0; i < n; i++) {
        if (!memchr(e[i].stage, 0, sizeof e[i].stage) ||
            !memchr(e[i].socket, 0, sizeof e[i].socket) || e[i].pid <= 0 ||
            vs_ledger_proc_start(e[i].pid) != e[i].start_time)
            abort();
        own += e[i].pid == getpid();
    }
    if (own != own_expected)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/vs_fuzz_ledger_XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(path, sizeof path, "%s/gpu-" UUID ".ledger", dir);
        atexit(remove_dir);
        vs_log_set_sink(quiet);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
        abort();
    char err[512];
    struct vs_ledger *l = vs_ledger_open(dir, UUID, 1000, err, sizeof err);
    if (!l)
        abort();
    static struct vs_ledger_entry got[VS_LEDGER_ENTRIES];
    check_listing(got, vs_ledger_list(l, got, VS_LEDGER_ENTRIES), 0);
    struct vs_ledger_entry mine = {.live = 1, .lendable = 1, .stage = "fuzz"};
    if (vs_ledger_publish(l, &mine) != 0)
        abort();
    check_listing(got, vs_ledger_list(l, got, VS_LEDGER_ENTRIES), 1);
    vs_ledger_close(l);
    return 0;
}
