/* Importing RAPIDS RMM CSV logs (Thread,Time,Action,Pointer,Size,Stream): good logs replay
 * stream-ordered with the expected peak; malformed rows are refused with "FILE:LINE: what". */
#include "replay_fixture.h"

TestSuite(trace_rmm, .fini = fx_cleanup);

#define RMM_HEADER "Thread,Time,Action,Pointer,Size,Stream\n"

static void expect_refused(const char *text, const char *msg)
{
    char *path = fx_write("bad.csv", text), colon_msg[512];
    snprintf(colon_msg, sizeof colon_msg, ":%s", msg);
    fx_expect_replay_refused(path, colon_msg);
    free(path);
}

Test(trace_rmm, log_replays_with_its_streams)
{
    /* Both time styles, both free spellings, a failed allocation RMM logged and CRLF endings. */
    char *path = fx_write("rmm.csv",
        RMM_HEADER
        "140573312345856,1634567890.123456,allocate,0x7f8a40000000,1048576,0x7f8a38001020\r\n"
        "140573312345856,1634567890.234567,allocate,0x7f8a40100000,4194304,0x0\r\n"
        "140573312345856,1634567890.300000,allocate failure,0x0,99999999999,0x0\r\n"
        "140573312345857,10:30:45.123456,deallocate,0x7f8a40000000,1048576,0x7f8a38001020\r\n"
        "140573312345857,10:30:46.5,allocate,0x7f8a40000000,524288,0x7f8a38001020\r\n"
        "140573312345857,10:30:47,free,0x7f8a40100000,4194304,0x0\r\n");
    struct fx_run r = fx_cli("replay %s --vram 1GiB --json", path);
    cr_assert_eq(r.status, 0, "status %d: %s%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "\"format\": \"rmm\""), "%s", r.out);
    cr_expect(strstr(r.out, "\"allocations\": 3"), "%s", r.out);
    cr_expect(strstr(r.out, "\"events\": 5"), "%s", r.out);
    cr_expect(strstr(r.out, "\"peak_live_bytes\": 5242880"), "%s", r.out);
    fx_run_free(&r);
    free(path);
}

Test(trace_rmm, malformed_rows)
{
    expect_refused(RMM_HEADER "1,1.0,allocate,0x1000,16\n",
                   "2: expected 6 comma-separated fields (Thread,Time,Action,Pointer,Size,Stream),"
                   " got 5");
    expect_refused(RMM_HEADER "1,1.0,reserve,0x1000,16,0x0\n",
                   "2: unknown Action \"reserve\" (expected allocate, deallocate, free or "
                   "allocate failure)");
    expect_refused(RMM_HEADER "1,yesterday,allocate,0x1000,16,0x0\n",
                   "2: bad Time \"yesterday\" (expected seconds like 1634567890.234567 or "
                   "HH:MM:SS.ffffff)");
    expect_refused(RMM_HEADER "1,1.0,allocate,1000,16,0x0\n",
                   "2: bad Pointer \"1000\" (expected hex like 0x7f8a40000000)");
    expect_refused(RMM_HEADER "1,1.0,allocate,0x1000,16B,0x0\n",
                   "2: bad Size \"16B\" (expected a byte count)");
    expect_refused(RMM_HEADER "1,1.0,allocate,0x1000,16,stream0\n",
                   "2: bad Stream \"stream0\" (expected hex like 0x7f8a38001020)");
    expect_refused(RMM_HEADER "1,1.0,allocate,0x1000,16,0x0\n1,2.0,deallocate,0x2000,16,0x0\n",
                   "3: free of unknown pointer 0x2000 (never allocated, or already freed)");
}

Test(trace_rmm, unknown_format)
{
    expect_refused("Time,Pointer\n1,0x10\n",
                   "1: neither a vramshim trace (JSON Lines) nor an RMM CSV log (header "
                   "Thread,Time,Action,Pointer,Size,Stream)");
}
