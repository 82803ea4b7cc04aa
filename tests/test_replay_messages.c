/* What `vramshim replay` says when the command line is wrong or the trace does not fit: a
 * missing --vram is named, device sizes outside what can be simulated are size errors naming
 * the flag (not a CUDA out-of-memory), and the arena's out-of-memory line appears once, in the
 * report, not also raw on stderr. */
#include "replay_fixture.h"

TestSuite(replay_messages, .fini = fx_cleanup);

#define TRACE VS_SOURCE_DIR "/tests/workloads/sdxl-vae-decode-small.jsonl"

Test(replay_messages, missing_vram_is_named)
{
    struct fx_run r = fx_cli("replay " TRACE);
    cr_expect_eq(r.status, 2);
    cr_expect(!strncmp(r.err, "vramshim replay: --vram is missing: give the device size to "
                              "simulate, e.g. --vram 12GiB\n", 86), "%s", r.err);
    cr_expect(strstr(r.err, "usage: vramshim replay TRACE --vram SIZE"), "%s", r.err);
    fx_run_free(&r);
}

Test(replay_messages, device_sizes_outside_the_simulated_range_are_size_errors)
{
    static const char *const sizes[] = {"99999TiB", "1MiB", "99999999999999TiB"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct fx_run r = fx_cli("replay " TRACE " --vram %s", sizes[i]);
        char want[256];
        snprintf(want, sizeof want, "vramshim replay: --vram '%s' is out of range: the simulated "
                 "device holds from 2.00 MiB to 1.00 TiB\n", sizes[i]);
        cr_expect_eq(r.status, 2, "%s: %s", sizes[i], r.err);
        cr_expect_str_eq(r.err, want);
        cr_expect_str_empty(r.out);
        fx_run_free(&r);
    }
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(replay_messages, the_arena_out_of_memory_line_is_said_once)
{
    struct fx_run r = fx_cli("replay " TRACE " --vram 100MiB");
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect_str_empty(r.err);
    cr_expect_eq(count(r.out, "out of memory on device 0"), 1, "%s", r.out);
    cr_expect(strstr(r.out, "arena: vramshim: out of memory on device 0: requested "), "%s",
              r.out);
    fx_run_free(&r);
}
