/* `vramshim top PID`: a live view over the control socket. The watched process is
 * stages_ctl_linked under the shim (it allocates 1 MiB per "alloc" line on its stdin); top runs
 * in a real terminal (tmux), where it must redraw with the stage and bytes the process has and
 * quit on `q`; without a terminal it prints frames. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "replay_fixture.h"

#define SHIM VS_BUILD_DIR "/libvramshim.so"
#define PROG VS_BUILD_DIR "/tests/progs/stages_ctl_linked"

TestSuite(top, .fini = fx_cleanup);

struct watched {
    long pid;
    FILE *in;
    char tmux[64];
};

/* Starts the program with its control socket in a private XDG_RUNTIME_DIR (inherited by every
 * command the test runs after). */
static void watch_start(struct watched *w)
{
    char xdg[512], fifo[512], out[512], cmd[2048];
    snprintf(xdg, sizeof xdg, "%s/xdg", fx_tmpdir());
    cr_assert_eq(mkdir(xdg, 0700), 0);
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    snprintf(fifo, sizeof fifo, "%s/in", fx_tmpdir());
    snprintf(out, sizeof out, "%s/out", fx_tmpdir());
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(cmd, sizeof cmd,
             "VRAMSHIM_CTL=1 LD_LIBRARY_PATH=%s/sim LD_PRELOAD=%s %s <%s >%s 2>/dev/null &",
             VS_BUILD_DIR, SHIM, PROG, fifo, out);
    cr_assert_eq(system(cmd), 0);
    w->in = fopen(fifo, "w"); /* opens once the program has its end open */
    cr_assert_not_null(w->in);
    setvbuf(w->in, NULL, _IOLBF, 0);
    for (int i = 0; i < 200 && !w->pid; i++) {
        char *text = fx_slurp(out);
        sscanf(text, "ready %ld", &w->pid);
        free(text);
        if (!w->pid)
            usleep(25000);
    }
    cr_assert_gt(w->pid, 0, "the program did not start");
    snprintf(w->tmux, sizeof w->tmux, "tmux -L vs_top_%d -f /dev/null", (int)getpid());
}

static void watch_stop(struct watched *w)
{
    fprintf(w->in, "quit\n");
    fclose(w->in);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s kill-server 2>/dev/null", w->tmux);
    (void)!system(cmd);
}

static char *pane(const struct watched *w)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s capture-pane -p -t top", w->tmux);
    char *path = fx_path("pane"), full[512];
    snprintf(full, sizeof full, "%s >%s 2>&1", cmd, path);
    (void)!system(full);
    char *text = fx_slurp(path);
    free(path);
    return text;
}

/* Polls the pane until it shows every needle (5 s at most); returns the last capture. */
static char *pane_until(const struct watched *w, const char *const *needles, size_t n)
{
    char *text = NULL;
    for (int i = 0; i < 100; i++) {
        free(text);
        text = pane(w);
        size_t seen = 0;
        for (size_t k = 0; k < n; k++)
            seen += strstr(text, needles[k]) != NULL;
        if (seen == n)
            break;
        usleep(50000);
    }
    return text;
}

Test(top, redraws_in_a_terminal_and_quits_on_q)
{
    struct watched w = {0};
    watch_start(&w);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s new-session -d -s top -x 100 -y 40 '%s top %ld -d 0.2'", w.tmux,
             FX_CLI, w.pid);
    cr_assert_eq(system(cmd), 0);
    const char *first[] = {"vramshim top: pid", "(q quits)", "stage (none)"};
    char *text = pane_until(&w, first, 3);
    cr_expect(strstr(text, "(q quits)") && strstr(text, "stage (none)"), "%s", text);
    free(text);
    struct fx_run r = fx_cli("ctl %ld stage decode", w.pid);
    cr_assert_eq(r.status, 0, "%s", r.err);
    fx_run_free(&r);
    fprintf(w.in, "alloc\nalloc\n");
    const char *after[] = {"stage decode\n", "live 2.00 MiB", "stage (none) -> decode",
                           "stage decode: +2.00 MiB live"};
    text = pane_until(&w, after, 4);
    for (size_t k = 0; k < 4; k++)
        cr_expect(strstr(text, after[k]), "no '%s' in:\n%s", after[k], text);
    free(text);
    snprintf(cmd, sizeof cmd, "%s send-keys -t top q", w.tmux);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s has-session -t top 2>/dev/null", w.tmux);
    int alive = 1;
    for (int i = 0; i < 60 && alive; i++) {
        alive = system(cmd) == 0;
        if (alive)
            usleep(50000);
    }
    cr_expect(!alive, "top did not quit on q");
    watch_stop(&w);
}

Test(top, without_a_terminal_prints_frames)
{
    struct watched w = {0};
    watch_start(&w);
    fprintf(w.in, "alloc\n");
    usleep(200000);
    struct fx_run r = fx_cli("top %ld -n 2 -d 0.1 </dev/null", w.pid);
    cr_expect_eq(r.status, 0, "%s", r.err);
    char *second = strstr(r.out, "vramshim top: pid");
    cr_expect(second && strstr(second + 1, "vramshim top: pid"), "two frames: %s", r.out);
    cr_expect(!strstr(r.out, "\033["), "no terminal codes in a pipe");
    cr_expect(strstr(r.out, "live 1.00 MiB"), "%s", r.out);
    fx_run_free(&r);
    watch_stop(&w);
}

Test(top, a_process_without_a_socket_is_an_error)
{
    struct fx_run r = fx_cli("top %d -n 1", (int)getpid());
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "has no control socket"), "%s", r.err);
    fx_run_free(&r);
    r = fx_cli("top abc");
    cr_expect_eq(r.status, 2);
    fx_run_free(&r);
}
