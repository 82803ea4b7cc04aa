/* What `vramshim replay` does with inputs that are not trace files: lines without end (a file
 * of one huge line, /dev/zero), binary data, FIFOs, devices and directories are refused at once
 * with "PATH[:LINE]: what", in bounded memory, and never block. */
#include <sys/stat.h>

#include "replay_fixture.h"

TestSuite(trace_input, .fini = fx_cleanup, .timeout = 30);

#define HEADER                                                                                     \
    "{\"vramshim_trace\":1,\"pid\":7,\"devices\":[{\"ordinal\":0,\"total\":1073741824}]}\n"

/* text, then `n` copies of byte c, then tail */
static char *write_long(const char *name, const char *text, int c, size_t n, const char *tail)
{
    char *path = fx_path(name);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(text, f);
    for (size_t i = 0; i < n; i++)
        fputc(c, f);
    fputs(tail, f);
    fclose(f);
    return path;
}

Test(trace_input, a_line_beyond_the_limit_is_named)
{
    char *path = write_long("oneline.csv", "", 'x', 2u << 20, "");
    fx_expect_replay_refused(path,
                             ":1: line longer than 1048576 bytes, the limit for one trace event");
    free(path);
    path = write_long("long.jsonl", HEADER "{\"t\":1,\"ev\":\"stage\",\"stage\":\"", 'a', 1u << 20,
                      "\"}\n");
    fx_expect_replay_refused(path,
                             ":2: line longer than 1048576 bytes, the limit for one trace event");
    free(path);
}

Test(trace_input, a_line_at_the_limit_is_read)
{
    const char *ev = "{\"t\":1,\"ev\":\"stage\",\"stage\":\"\"}";
    char *path = write_long("atlimit.jsonl", HEADER "{\"t\":1,\"ev\":\"stage\",\"stage\":\"", 'a',
                            (1u << 20) - strlen(ev), "\"}\n");
    struct fx_run r = fx_cli("replay %s --vram 1GiB", path);
    cr_expect_eq(r.status, 0, "exit status %d, stderr: %s", r.status, r.err);
    fx_run_free(&r);
    free(path);
}

Test(trace_input, binary_data_is_refused)
{
    char *path = write_long("nul.jsonl", HEADER, '\0', 16, "\n");
    fx_expect_replay_refused(path, ":2: NUL byte at column 1: a binary file, not a trace");
    free(path);
}

/* /dev/zero never ends a line: refused as a device, at once (the limit would stop it too). */
Test(trace_input, devices_fifos_and_directories_are_refused_without_blocking)
{
    fx_expect_replay_refused("/dev/zero", ": is a character device, not a regular file");
    char *fifo = fx_path("fifo.jsonl");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    fx_expect_replay_refused(fifo, ": is a FIFO, not a regular file");
    free(fifo);
    fx_expect_replay_refused(fx_tmpdir(), ": is a directory");
}

/* `vramshim policy match --trace` reads traces with the same bounded lines and file checks. */
Test(trace_input, policy_match_reads_traces_the_same_way)
{
    char *path = write_long("oneline.jsonl", "", 'x', 2u << 20, "");
    struct fx_run r = fx_cli("policy match " VS_SOURCE_DIR "/policy/examples/comfyui-wan-vae.ini "
                             "--trace %s", path);
    char want[1024];
    snprintf(want, sizeof want, "vramshim policy match: %s:1: line longer than 1048576 bytes, "
             "the limit for one trace event\n", path);
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, want);
    fx_run_free(&r);
    free(path);
    r = fx_cli("policy match " VS_SOURCE_DIR "/policy/examples/comfyui-wan-vae.ini --trace "
               "/dev/zero");
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.err, "vramshim policy match: cannot open /dev/zero: is a character "
                            "device, not a regular file\n");
    fx_run_free(&r);
}
