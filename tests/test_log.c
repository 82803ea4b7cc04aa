/* The one logger (allocator/log.h): the `vramshim: ` prefix once per line, the level filter,
 * the sink, and the per-thread line count the shim uses to say a fallback once. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocator/log.h"

static char got[4][1100];
static int n_got;

static void sink(const char *line)
{
    if (n_got < 4)
        snprintf(got[n_got++], sizeof got[0], "%s", line);
}

static void start(void)
{
    n_got = 0;
    vs_log_set_sink(sink);
}

Test(log, a_line_gets_the_prefix_once_and_no_newline, .init = start)
{
    vs_log(VS_LOG_WARN, "arena: cuMemAddressReserve(%s) failed (error %d)", "2.00 MiB", 2);
    cr_assert_eq(n_got, 1);
    cr_expect_str_eq(got[0], "vramshim: arena: cuMemAddressReserve(2.00 MiB) failed (error 2)");
}

Test(log, levels_below_the_threshold_are_dropped_and_not_counted, .init = start)
{
    unsigned before = vs_log_thread_lines();
    vs_log(VS_LOG_INFO, "not shown at the default level (warn)");
    vs_log(VS_LOG_DEBUG, "nor this");
    cr_expect_eq(n_got, 0);
    cr_expect_eq(vs_log_thread_lines(), before);
    vs_log(VS_LOG_ERROR, "shown");
    cr_expect_eq(n_got, 1);
    cr_expect_eq(vs_log_thread_lines(), before + 1);
}

Test(log, vramshim_log_sets_the_threshold_and_an_unknown_value_is_named, .init = start)
{
    setenv("VRAMSHIM_LOG", "info", 1);
    vs_log_init();
    vs_log(VS_LOG_INFO, "summary");
    vs_log(VS_LOG_DEBUG, "hidden");
    cr_assert_eq(n_got, 1);
    cr_expect_str_eq(got[0], "vramshim: summary");
    setenv("VRAMSHIM_LOG", "loud", 1);
    vs_log_init();
    cr_assert_eq(n_got, 2);
    cr_expect_str_eq(got[1], "vramshim: VRAMSHIM_LOG=\"loud\" is not a level (expected error, "
                             "warn, info or debug); using warn");
}

static void *log_once(void *arg)
{
    (void)arg;
    vs_log(VS_LOG_WARN, "from another thread");
    return NULL;
}

Test(log, the_line_count_is_the_calling_threads_own, .init = start)
{
    unsigned before = vs_log_thread_lines();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, log_once, NULL), 0);
    pthread_join(t, NULL);
    cr_expect_eq(n_got, 1);
    cr_expect_eq(vs_log_thread_lines(), before, "another thread's line counted here");
}

Test(log, a_long_line_is_cut_not_overrun, .init = start)
{
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    vs_log(VS_LOG_WARN, "%s", big);
    cr_assert_eq(n_got, 1);
    cr_expect_eq(strncmp(got[0], "vramshim: xxx", 13), 0);
    cr_expect_eq(strlen(got[0]), 1022, "the line and its newline fit 1024 bytes");
}

static void start_with_stderr(void)
{
    start();
    cr_redirect_stderr();
}

Test(log, a_fatal_line_goes_to_stderr_past_the_sink_and_the_level, .init = start_with_stderr)
{
    setenv("VRAMSHIM_LOG", "error", 1);
    vs_log_init();
    vs_log_fatal("internal invariant broken at %s:%d", "x.c", 7);
    fflush(stderr);
    cr_expect_eq(n_got, 0, "the sink got the fatal line");
    cr_expect_stderr_eq_str("vramshim: internal invariant broken at x.c:7\n");
}
