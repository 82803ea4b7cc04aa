/* The demo's LLM server (tools/demo/llm_server.c) on simcuda, at small sizes: every request
 * reads all its weights back and checks them; a damaged weight fails its checksum; a signal
 * ends it between requests; out of memory while loading is reported; on a shared simulated GPU
 * (SIMCUDA_SHARED) a second server cannot load while the first holds the memory, and can once
 * the first is gone, or once the first (under vramshim) demoted its weights on request. */
#include <sys/mman.h>

#include "tests/demo_fixture.h"

#define SERVER DM_SIM DM_PROGS "/llm_server --weights-mib 32 --layers 4 --kv-mib 2 "

static struct dm_run r;

static void teardown(void)
{
    json_decref(r.last);
    r.last = NULL;
}

TestSuite(demo_llm_server, .fini = teardown);

static json_int_t field(const char *key)
{
    cr_assert_not_null(r.last, "no result line: %s\n%s", r.out, r.err);
    return json_integer_value(json_object_get(r.last, key));
}

static int count_lines(const char *prefix)
{
    int n = 0;
    for (const char *p = r.out; (p = strstr(p, prefix)); p++)
        n += p == r.out || p[-1] == '\n';
    return n;
}

Test(demo_llm_server, every_request_reads_intact_weights)
{
    dm_sh(&r, SERVER "--requests 3 --interval-ms 5");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "ready: 4 weights, 32 MiB"), "%s", r.out);
    cr_assert_eq(count_lines("request "), 3, "%s", r.out);
    cr_assert_eq(count_lines("request 3: checksums ok (4 weights, 32 MiB)"), 1, "%s", r.out);
    cr_assert_eq(field("requests"), 3);
    cr_assert_eq(field("checksum_failures"), 0);
    cr_assert_eq(field("request_errors"), 0);
    cr_assert_eq(field("weight_bytes"), 32 << 20);
    cr_assert(json_is_null(json_object_get(r.last, "load_error")));
}

Test(demo_llm_server, a_damaged_weight_fails_its_checksum)
{
    dm_sh(&r, SERVER "--requests 3 --interval-ms 5 --corrupt-at 2");
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert_eq(count_lines("request 1: checksums ok"), 1, "%s", r.out);
    cr_assert_eq(count_lines("request 2: checksum FAILED for 1 of 4 weights (first: llm.layer.0)"),
                 1, "%s", r.out);
    cr_assert_eq(field("checksum_failures"), 2);
}

Test(demo_llm_server, a_signal_ends_it_between_requests)
{
    /* --requests 0: it would answer one request a minute for ever. */
    dm_sh(&r,
          "(out=$(mktemp); " SERVER "--interval-ms 60000 >$out & pid=$!; i=0; "
          "until grep -q '^request 1:' $out || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; "
          "kill -TERM $pid; wait $pid; st=$?; cat $out; rm -f $out; exit $st)");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(field("requests"), 1);
}

Test(demo_llm_server, out_of_memory_while_loading_is_reported)
{
    dm_sh(&r, "SIMCUDA_VRAM=12MiB " SERVER "--requests 1");
    cr_assert_eq(r.status, 3, "%s%s", r.out, r.err);
    cr_assert_str_eq(dm_str(r.last, "load_error"), "CUDA_ERROR_OUT_OF_MEMORY");
    cr_assert(
        strstr(r.err, "llm_server: loading layer 1 (8388608 bytes): CUDA_ERROR_OUT_OF_MEMORY"),
        "%s", r.err);
    cr_assert_eq(field("requests"), 0);
}

Test(demo_llm_server, bad_options_are_named)
{
    dm_sh(&r, SERVER "--requests -1");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "llm_server: --requests needs a whole number up to"), "%s", r.err);
    dm_sh(&r, SERVER "--turbo 1");
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "llm_server: unknown option \"--turbo\""), "%s", r.err);
}

Test(demo_llm_server, two_servers_on_one_shared_gpu_compete_for_its_memory)
{
    char name[32], shm[96];
    snprintf(name, sizeof name, "llm%d", (int)getpid());
    snprintf(shm, sizeof shm, "/simcuda-%u-%s", (unsigned)geteuid(), name);
    /* 48 MiB: one server's 32 MiB of weights fit, two do not. The first serves until killed. */
    dm_sh(&r,
          "(export SIMCUDA_SHARED=%s SIMCUDA_VRAM=48MiB; out=$(mktemp); " SERVER
          "--interval-ms 60000 >$out & first=$!; i=0; "
          "until grep -q '^request 1:' $out || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; "
          SERVER "--requests 1; echo second=$?; kill -KILL $first; wait $first; "
          SERVER "--requests 1 --interval-ms 0; echo third=$?; rm -f $out)",
          name);
    shm_unlink(shm);
    cr_assert(strstr(r.out, "second=3\n"), "the second server loaded beside the first:\n%s\n%s",
              r.out, r.err);
    cr_assert(strstr(r.out, "third=0\n"), "the killed server's memory did not come back:\n%s\n%s",
              r.out, r.err);
}

/* Under vramshim, its weights demoted to host memory between requests (`vramshim ctl PID demote
 * weights`, the weights tagged by their call site llm_load_weights) and promoted back: every
 * request, those answered from host memory included, reads intact weights. */
/* A directory (for XDG_RUNTIME_DIR) holding llm.ini, the policy that tags the weights. */
static void policy_dir(char dir[static 19], char policy[static 64])
{
    strcpy(dir, "/tmp/vs_llm_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(policy, 64, "%s/llm.ini", dir);
    FILE *f = fopen(policy, "w");
    cr_assert_not_null(f);
    fprintf(f, "[global]\nctl = on\n\n[tag weights]\nmatch = llm_load_weights\n");
    fclose(f);
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(demo_llm_server, requests_answered_from_host_memory_read_intact_weights)
{
    char dir[19], policy[64];
    policy_dir(dir, policy);
    dm_sh(&r,
          "(export XDG_RUNTIME_DIR=%s; out=%s/out; "
          "LD_PRELOAD=" VS_BUILD_DIR "/libvramshim.so VRAMSHIM_POLICY=%s " SERVER
          "--interval-ms 100 >$out & pid=$!; "
          "wait_for() { i=0; until grep -q \"^request $1:\" $out || [ $i -ge 600 ]; do "
          "sleep 0.05; i=$((i+1)); done; }; "
          "wait_for 1; " DM_CLI " ctl $pid demote weights; wait_for 4; " DM_CLI
          " ctl $pid promote weights; wait_for 6; kill -TERM $pid; wait $pid; st=$?; cat $out; "
          "exit $st)",
          dir, dir, policy);
    remove_dir(dir);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "demoted 33554432 bytes\n"), "the weights were not demoted:\n%s%s",
              r.out, r.err);
    cr_assert(strstr(r.out, "promoted 33554432 bytes\n"), "%s%s", r.out, r.err);
    cr_assert_geq(field("requests"), 6);
    cr_assert_eq(field("checksum_failures"), 0, "%s", r.out);
    cr_assert_eq(field("request_errors"), 0, "%s", r.out);
}

/* Starts a server under the shim on a shared 48 MiB simulated GPU (a request every interval_ms),
 * runs `script` beside it ($pid: the server, its stdout in $out; `wait_for N` waits for its
 * request N), stops it and prints its output. */
static void beside_shared_server(int interval_ms, const char *script)
{
    char dir[19], policy[64], name[32], shm[96];
    policy_dir(dir, policy);
    snprintf(name, sizeof name, "llmd%d", (int)getpid());
    snprintf(shm, sizeof shm, "/simcuda-%u-%s", (unsigned)geteuid(), name);
    dm_sh(&r,
          "(export XDG_RUNTIME_DIR=%s SIMCUDA_SHARED=%s SIMCUDA_VRAM=48MiB; out=%s/out; "
          "LD_PRELOAD=" VS_BUILD_DIR "/libvramshim.so VRAMSHIM_POLICY=%s " SERVER
          "--interval-ms %d >$out & pid=$!; "
          "wait_for() { i=0; until grep -q \"^request $1:\" $out || [ $i -ge 600 ]; do "
          "sleep 0.05; i=$((i+1)); done; }; "
          "%s; kill -TERM $pid; wait $pid; st=$?; cat $out; exit $st)",
          dir, name, dir, policy, interval_ms, script);
    shm_unlink(shm);
    remove_dir(dir);
}

/* `vramshim ctl PID demote weights` gives the device memory back to the driver (issue 15): on a
 * shared 48 MiB GPU, a second server (pass-through) loads its 32 MiB of weights beside the first
 * while the first's are demoted, and answers; once it is gone, the first promotes its weights
 * back and keeps answering with intact weights. */
Test(demo_llm_server, a_demote_gives_the_memory_to_another_process)
{
    beside_shared_server(100, "wait_for 1; " DM_CLI " ctl $pid demote weights; " SERVER
                              "--requests 1 --interval-ms 0 >/dev/null; echo second=$?; " DM_CLI
                              " ctl $pid promote weights; n=$(grep -c '^request' $out); "
                              "wait_for $((n+2))");
    cr_assert(strstr(r.out, "demoted 33554432 bytes\n"), "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "second=0\n"),
              "the second server could not have the demoted weights' memory:\n%s%s", r.out,
              r.err);
    cr_assert(strstr(r.out, "promoted 33554432 bytes\n"), "%s%s", r.out, r.err);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(field("checksum_failures"), 0, "%s", r.out);
    cr_assert_eq(field("request_errors"), 0, "%s", r.out);
}

/* A server answering requests back to back while its weights are demoted, taken over by a
 * second server on the shared GPU, and promoted again, ten times: no request may see anything
 * but its weights (a promote once mapped fresh device memory, still holding the second server's
 * data, at the weights' addresses before copying them in: requests running then failed). */
Test(demo_llm_server, requests_during_demote_and_promote_cycles_see_intact_weights)
{
    beside_shared_server(0, "wait_for 1; for c in 1 2 3 4 5 6 7 8 9 10; do " DM_CLI
                            " ctl $pid demote weights; " SERVER
                            "--requests 1 --interval-ms 0 >/dev/null || echo second=$?; " DM_CLI
                            " ctl $pid promote weights; done");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_null(strstr(r.out, "second="), "%s", r.out);
    cr_assert_eq(field("checksum_failures"), 0, "%s", r.out);
    cr_assert_eq(field("request_errors"), 0, "%s", r.out);
}
