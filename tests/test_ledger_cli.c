/* `vramshim ctl --ledger`: the peers that processes published with the ledger API (this test
 * and a child it keeps alive), in text and JSON; no ledger; a ledger of the wrong mode refused
 * with the ledger's line; a corrupt one rebuilt and said so. The CLI finds the ledgers through
 * XDG_RUNTIME_DIR, as the shim does. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "allocator/ledger.h"

#define LC_UUID "GPU-5e1f0000-ab12"

static char xdg[64], ldir[96], lpath[160];
static char out[16384];

static void setup(void)
{
    alarm(60);
    snprintf(xdg, sizeof xdg, "/tmp/vs_ledger_cli_XXXXXX");
    cr_assert_not_null(mkdtemp(xdg));
    cr_assert_eq(setenv("XDG_RUNTIME_DIR", xdg, 1), 0);
    snprintf(ldir, sizeof ldir, "%s/vramshim", xdg);
    snprintf(lpath, sizeof lpath, "%s/gpu-" LC_UUID ".ledger", ldir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", xdg);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ledger_cli, .init = setup, .fini = teardown);

/* Runs the CLI with args; stdout and stderr together in out; returns the exit status. */
static int lc_run(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s/vramshim' ctl %s 2>&1", VS_BUILD_DIR, args);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_assert(WIFEXITED(st), "%s", out);
    return WEXITSTATUS(st);
}

static struct vs_ledger *lc_open(void)
{
    char err[512] = "";
    struct vs_ledger *l = vs_ledger_open(NULL, LC_UUID, 0, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    return l;
}

static void lc_publish(struct vs_ledger *l, const char *stage, uint64_t live, uint64_t lendable,
                       const char *socket)
{
    struct vs_ledger_entry e = {.live = live, .cached = 1 << 20, .demoted = 3ull << 30,
                                .lendable = lendable};
    snprintf(e.stage, sizeof e.stage, "%s", stage);
    snprintf(e.socket, sizeof e.socket, "%s", socket);
    cr_assert_eq(vs_ledger_publish(l, &e), 0, "%s", vs_ledger_error(l));
}

/* A child that publishes its entry and stays alive until killed; returns its pid. */
static pid_t lc_peer(void)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        struct vs_ledger *l = vs_ledger_open(NULL, LC_UUID, 0, NULL, 0);
        struct vs_ledger_entry e = {.live = 5ull << 30, .lendable = 5ull << 30};
        snprintf(e.stage, sizeof e.stage, "idle\x1b[2J");
        int ok = l && vs_ledger_publish(l, &e) == 0;
        if (write(p[1], &ok, sizeof ok) != sizeof ok)
            _exit(1);
        pause();
        _exit(0);
    }
    close(p[1]);
    int ok = 0;
    cr_assert_eq(read(p[0], &ok, sizeof ok), (ssize_t)sizeof ok);
    close(p[0]);
    cr_assert(ok, "the peer could not publish");
    return pid;
}

static void lc_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(ledger_cli, lists_every_peer_of_the_gpu)
{
    struct vs_ledger *l = lc_open();
    lc_publish(l, "decode", 7ull << 30, 0, "/run/user/1/vramshim/ctl-1.sock");
    pid_t peer = lc_peer();
    cr_assert_eq(lc_run("--ledger"), 0, "%s", out);
    char head[256], me[256], them[256];
    snprintf(head, sizeof head, LC_UUID " (%s): 2 processes\n", lpath);
    cr_expect(strstr(out, head), "%s", out);
    cr_expect(strstr(out, "PID  STAGE"), "%s", out);
    snprintf(me, sizeof me, "%8d  %-16s ", (int)getpid(), "decode");
    cr_expect(strstr(out, me), "%s", out);
    cr_expect(strstr(out, "/run/user/1/vramshim/ctl-1.sock"), "%s", out);
    /* a peer's stage is shown, its control characters are not sent to the terminal */
    snprintf(them, sizeof them, "%8d  %-16s ", (int)peer, "idle?[2J");
    cr_expect(strstr(out, them), "%s", out);
    cr_expect_null(strchr(out, '\x1b'));

    cr_assert_eq(lc_run("--ledger --json"), 0, "%s", out);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    cr_assert(o, "not JSON (%s): %s", je.text, out);
    json_t *gpu = json_array_get(json_object_get(o, "gpus"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(gpu, "uuid")), LC_UUID);
    cr_expect_str_eq(json_string_value(json_object_get(gpu, "path")), lpath);
    json_t *procs = json_object_get(gpu, "processes");
    cr_assert_eq(json_array_size(procs), 2);
    bool saw_me = false, saw_peer = false;
    for (size_t i = 0; i < 2; i++) {
        json_t *p = json_array_get(procs, i);
        json_int_t pid = json_integer_value(json_object_get(p, "pid"));
        if (pid == getpid()) {
            saw_me = true;
            cr_expect_str_eq(json_string_value(json_object_get(p, "stage")), "decode");
            cr_expect_eq(json_integer_value(json_object_get(p, "live_bytes")), 7ll << 30);
            cr_expect_eq(json_integer_value(json_object_get(p, "cached_bytes")), 1 << 20);
            cr_expect_eq(json_integer_value(json_object_get(p, "demoted_bytes")), 3ll << 30);
            cr_expect_eq(json_integer_value(json_object_get(p, "lendable_bytes")), 0);
            double age = json_real_value(json_object_get(p, "updated_age_s"));
            cr_expect(age >= 0 && age < 30, "age %f", age);
        } else if (pid == peer) {
            saw_peer = true;
            cr_expect_eq(json_integer_value(json_object_get(p, "lendable_bytes")), 5ll << 30);
            cr_expect(json_is_null(json_object_get(p, "socket")));
        }
    }
    cr_expect(saw_me && saw_peer, "%s", out);
    json_decref(o);

    /* A peer that is gone is no longer listed. */
    lc_kill(peer);
    cr_assert_eq(lc_run("--ledger"), 0, "%s", out);
    snprintf(head, sizeof head, LC_UUID " (%s): 1 process\n", lpath);
    cr_expect(strstr(out, head), "%s", out);
    cr_expect_null(strstr(out, them), "%s", out);
    vs_ledger_close(l);
}

Test(ledger_cli, says_when_there_is_no_ledger)
{
    cr_assert_eq(lc_run("--ledger"), 0, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "no ledger in %s: no process of this user runs under vramshim "
                                "with lending\n", ldir);
    cr_expect_str_eq(out, want);
    cr_expect_eq(lc_run("--ledger --verbose"), 2);
    cr_expect(strstr(out, "--ledger takes only --json, not '--verbose'"), "%s", out);
}

Test(ledger_cli, refuses_a_ledger_others_may_read)
{
    struct vs_ledger *l = lc_open();
    lc_publish(l, "decode", 1 << 30, 0, "");
    vs_ledger_close(l);
    cr_assert_eq(chmod(lpath, 0644), 0);
    cr_expect_eq(lc_run("--ledger"), 1, "%s", out);
    char want[512];
    snprintf(want, sizeof want,
             "vramshim: ledger file %s: has mode 0644, expected 0600 (this user only): refused\n",
             lpath);
    cr_expect_str_eq(out, want);
    struct stat st;
    cr_assert_eq(stat(lpath, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0644, "a refused ledger is not touched");
}

Test(ledger_cli, rebuilds_a_corrupt_ledger_and_says_so)
{
    struct vs_ledger *l = lc_open();
    lc_publish(l, "decode", 1 << 30, 0, "");
    vs_ledger_close(l);
    FILE *f = fopen(lpath, "r+b");
    cr_assert_not_null(f);
    fseek(f, 200, SEEK_SET); /* inside the entry: the checksum no longer matches */
    fputc('x', f);
    fclose(f);
    cr_expect_eq(lc_run("--ledger"), 0, "%s", out);
    cr_expect(strstr(out, "corrupt (bad checksum): rebuilt"), "%s", out);
    char head[256];
    snprintf(head, sizeof head, LC_UUID " (%s): 0 processes\n", lpath);
    cr_expect(strstr(out, head), "%s", out);
}
