/* Processes under vramshim on one shared simulated GPU (SIMCUDA_SHARED) and the per-GPU ledger
 * (docs/lending.md): each publishes its numbers, sees the others in `vramshim ctl --ledger`, and
 * removes its entry at exit. */
#include <cuda.h>
#include <pthread.h>
#include <sys/mman.h>

#include "tests/demo_fixture.h"
#include "tools/simcuda/simcuda.h"

#define SERVER DM_SIM DM_PROGS "/llm_server --layers 4 --kv-mib 2 "
#define SHIM "LD_PRELOAD=" VS_BUILD_DIR "/libvramshim.so "

static struct dm_run r;
static char dir[19], name[32], shm[96];

/* A directory for XDG_RUNTIME_DIR (the ledger and the sockets) holding lend.ini, the demo
 * server's lending policy with a short idle_after, and a shared simulated GPU's name. */
static void setup(void)
{
    strcpy(dir, "/tmp/vs_lnd_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/lend.ini", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "[global]\nctl = on\n\n[tag weights]\nmatch = llm_load_weights\n\n"
               "[tag kv]\nmatch = llm_answer_request\n\n"
               "[lend]\nlend = weights\nnever = kv\nidle_after = 100ms\nwait = 2s\n");
    fclose(f);
    snprintf(name, sizeof name, "lend%d", (int)getpid());
    snprintf(shm, sizeof shm, "/simcuda-%u-%s", (unsigned)geteuid(), name);
}

static void teardown(void)
{
    json_decref(r.last);
    r.last = NULL;
    shm_unlink(shm);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(demo_lend, .init = setup, .fini = teardown);

static json_t *load(const char *file)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    cr_assert_not_null(j, "%s: %s\n%s%s", path, err.text, r.out, r.err);
    return j;
}

/* The ledger entry of pid in a `ctl --ledger --json` document, or NULL. */
static json_t *entry_of(json_t *doc, json_int_t pid)
{
    json_t *gpus = json_object_get(doc, "gpus");
    for (size_t g = 0; g < json_array_size(gpus); g++) {
        json_t *procs = json_object_get(json_array_get(gpus, g), "processes");
        for (size_t i = 0; i < json_array_size(procs); i++) {
            json_t *e = json_array_get(procs, i);
            if (json_integer_value(json_object_get(e, "pid")) == pid)
                return e;
        }
    }
    return NULL;
}

static json_int_t num(json_t *e, const char *key)
{
    cr_assert_not_null(e);
    return json_integer_value(json_object_get(e, key));
}

/* A lender (the lend policy: its 32 MiB of weights lendable once idle), a process with
 * VRAMSHIM_LEDGER=1 and no policy (publishes, lends nothing) and one under the shim with neither
 * (publishes nothing) on one shared GPU: the first two see each other in the ledger; after they
 * exit, their entries are gone. */
Test(demo_lend, processes_on_one_gpu_see_each_other_in_the_ledger)
{
    dm_sh(&r,
          "(export XDG_RUNTIME_DIR=%s SIMCUDA_SHARED=%s SIMCUDA_VRAM=96MiB; "
          SHIM "VRAMSHIM_POLICY=%s/lend.ini " SERVER "--weights-mib 32 --interval-ms 60000 "
          ">%s/a.out & a=$!; " SHIM "VRAMSHIM_LEDGER=1 " SERVER
          "--weights-mib 16 --interval-ms 60000 >%s/b.out & b=$!; " SHIM SERVER
          "--weights-mib 8 --interval-ms 60000 >%s/c.out & c=$!; echo \"pids $a $b $c\"; i=0; "
          /* Each has answered its first request: idle, its numbers final. */
          "until grep -qs '^request 1:' %s/a.out && grep -qs '^request 1:' %s/b.out || "
          "[ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; sleep 0.6; "
          DM_CLI " ctl --ledger --json >%s/both.json; " DM_CLI " ctl --ledger; "
          "kill -TERM $a $b $c; wait $a $b $c; " DM_CLI " ctl --ledger --json >%s/after.json)",
          dir, name, dir, dir, dir, dir, dir, dir, dir, dir);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    int a, b, c;
    cr_assert_eq(sscanf(r.out, "pids %d %d %d", &a, &b, &c), 3, "%s", r.out);
    json_t *both = load("both.json"), *after = load("after.json");
    json_t *ea = entry_of(both, a), *eb = entry_of(both, b);
    cr_assert_not_null(ea, "the lender is not in the ledger:\n%s%s", r.out, r.err);
    cr_assert_not_null(eb, "the VRAMSHIM_LEDGER=1 process is not in the ledger:\n%s%s", r.out,
                       r.err);
    cr_assert_null(entry_of(both, c), "a process with no [lend] published:\n%s", r.out);
    cr_assert_eq(num(ea, "live_bytes"), 32 << 20);
    cr_assert_eq(num(ea, "lendable_bytes"), 32 << 20, "%s", r.out);
    cr_assert_eq(num(ea, "demoted_bytes"), 0);
    char sock[64];
    snprintf(sock, sizeof sock, "%s/vramshim/%d.sock", dir, a);
    cr_assert_str_eq(json_string_value(json_object_get(ea, "socket")), sock);
    cr_assert_eq(num(eb, "live_bytes"), 16 << 20);
    cr_assert_eq(num(eb, "lendable_bytes"), 0);
    cr_assert(json_is_null(json_object_get(eb, "socket")));
    cr_assert_null(entry_of(after, a), "the lender's entry stayed after its exit:\n%s", r.out);
    cr_assert_null(entry_of(after, b), "an entry stayed after its process's exit:\n%s", r.out);
    json_decref(both);
    json_decref(after);
}

/* `vramshim ctl PID lend SIZE`, as a peer would ask, on a shared 48 MiB GPU: the idle lender
 * demotes its weights (never its KV cache) and releases their 32 MiB to the driver (simcuda's
 * counters say so), so a second server loads its own 32 MiB of weights beside it and answers
 * fifteen requests; the lender keeps answering from host memory with intact weights without
 * taking back the room the second needs for its KV caches, and once the second is gone its next
 * request brings its weights back to the device. */
/* What the driver says the lender holds before and after the lend: this test process attaches to
 * the shared simulated GPU and reads simcuda's counters when the script says "before" or
 * "lent" (a file), answering each with a "go" file. */
static size_t held_before, held_after;

static bool wait_file(const char *file)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    for (int i = 0; i < 600; i++, usleep(50000))
        if (access(path, F_OK) == 0)
            return true;
    return false;
}

static void go(const char *file)
{
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    fclose(fopen(path, "w"));
}

static pid_t lender_pid(void)
{
    char path[64];
    snprintf(path, sizeof path, "%s/before", dir);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) != 1)
        pid = 0;
    if (f)
        fclose(f);
    return pid;
}

static void *read_counters(void *arg)
{
    (void)arg;
    if (wait_file("before")) {
        held_before = simcuda_process_in_use(0, lender_pid());
        go("go1");
    }
    if (wait_file("lent")) {
        held_after = simcuda_process_in_use(0, lender_pid());
        go("go2");
    }
    return NULL;
}

Test(demo_lend, a_lend_request_releases_the_weights_and_they_come_back_on_use)
{
    setenv("SIMCUDA_SHARED", name, 1);
    setenv("SIMCUDA_VRAM", "48MiB", 1);
    cr_assert_eq(cuInit(0), CUDA_SUCCESS);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, read_counters, NULL), 0);
    dm_sh(&r,
          "(export XDG_RUNTIME_DIR=%s SIMCUDA_SHARED=%s SIMCUDA_VRAM=48MiB; out=%s/out; "
          SHIM "VRAMSHIM_LOG=info VRAMSHIM_POLICY=%s/lend.ini " SERVER
          "--weights-mib 32 --interval-ms 3000 >$out 2>%s/err & a=$!; "
          "wait_for() { i=0; until grep -q \"^request $1:\" $out || [ $i -ge 600 ]; do "
          "sleep 0.05; i=$((i+1)); done; }; "
          "wait_on() { i=0; until [ -e %s/$1 ] || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); "
          "done; }; wait_for 1; sleep 0.8; echo $a >%s/before; wait_on go1; "
          DM_CLI " ctl $a lend 16MiB; touch %s/lent; wait_on go2; " SERVER
          "--weights-mib 32 --requests 15 --interval-ms 300 >/dev/null; echo second=$?; "
          "i=0; until grep -q 'promoted 33554432 lent bytes back' %s/err || [ $i -ge 200 ]; do "
          "sleep 0.05; i=$((i+1)); done; n=$(grep -c '^request' $out); wait_for $((n+1)); "
          "kill -TERM $a; wait $a; st=$?; cat $out; cat %s/err >&2; exit $st)",
          dir, name, dir, dir, dir, dir, dir, dir, dir, dir);
    pthread_join(th, NULL);
    cr_assert(strstr(r.out, "demoted 33554432 bytes, released 33554432 bytes to the driver\n"),
              "%s%s", r.out, r.err);
    /* The driver's own account: the lender holds 32 MiB less (its weights; the KV cache's
     * cached granule stays with it). */
    cr_assert_geq(held_before, 32u << 20, "%zu", held_before);
    cr_assert_eq(held_before - held_after, 32u << 20, "held %zu bytes before the lend, %zu after",
                 held_before, held_after);
    cr_assert(strstr(r.out, "second=0\n"),
              "the second server could not have the lent memory:\n%s%s", r.out, r.err);
    cr_assert(strstr(r.err, "vramshim: lend: pid ") &&
                  strstr(r.err, " asked for 16777216 bytes: demoted 33554432, released 33554432 "
                                "to the driver"),
              "%s", r.err);
    cr_assert(strstr(r.err, "lend: in use again, promoted 33554432 lent bytes back\n"),
              "the lent weights did not come back:\n%s%s", r.out, r.err);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_eq(json_integer_value(json_object_get(r.last, "checksum_failures")), 0, "%s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(r.last, "request_errors")), 0, "%s", r.out);
}

/* A lender asked while it is busy (its idle_after not reached) lends nothing and says why. */
Test(demo_lend, a_busy_lender_lends_nothing)
{
    dm_sh(&r,
          "(export XDG_RUNTIME_DIR=%s; sed -i 's/idle_after = 100ms/idle_after = 1h/' "
          "%s/lend.ini; out=%s/out; " SHIM "VRAMSHIM_POLICY=%s/lend.ini " SERVER
          "--weights-mib 8 --interval-ms 60000 >$out & a=$!; i=0; "
          "until grep -q '^request 1:' $out || [ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; "
          DM_CLI " ctl $a lend 4096; echo lend=$?; kill -TERM $a; wait $a)",
          dir, dir, dir, dir);
    cr_assert(strstr(r.out, "lent nothing: it is busy (active within its idle_after)\nlend=0\n"),
              "%s%s", r.out, r.err);
}

/* Shell: starts the lender (the lend policy, 32 MiB of weights, a request a minute) as $a with
 * its output in $dir/a, and waits until the ledger shows its weights lendable. */
#define START_LENDER(vram)                                                                     \
    "export XDG_RUNTIME_DIR=%s SIMCUDA_SHARED=%s SIMCUDA_VRAM=" vram "; "                      \
    SHIM "VRAMSHIM_POLICY=$XDG_RUNTIME_DIR/lend.ini " SERVER "--weights-mib 32 "               \
    "--interval-ms 60000 >$XDG_RUNTIME_DIR/a 2>$XDG_RUNTIME_DIR/aerr & a=$!; i=0; "           \
    "until " DM_CLI " ctl --ledger --json 2>/dev/null | grep -q '\"lendable_bytes\": 33554432' " \
    "|| [ $i -ge 200 ]; do sleep 0.05; i=$((i+1)); done; "
/* A borrower: a server under the shim with the ledger on and no policy (it lends nothing). */
#define BORROWER SHIM "VRAMSHIM_LEDGER=1 " SERVER

/* On a shared 48 MiB GPU the lender's idle weights hold 32 MiB: a second server, out of memory
 * at its second layer, borrows from the lender (the ledger names it), retries and loads all of
 * its 32 MiB and answers; the lender's weights, in host memory now, are intact. */
Test(demo_lend, an_allocation_out_of_memory_borrows_from_an_idle_lender)
{
    dm_sh(&r,
          "(" START_LENDER("48MiB") "VRAMSHIM_CTL=1 " BORROWER "--weights-mib 32 "
          "--interval-ms 60000 >%s/b & b=$!; i=0; until grep -q '^request 1:' %s/b || "
          "[ $i -ge 600 ]; do sleep 0.05; i=$((i+1)); done; " DM_CLI " ctl $b status >%s/bs.json; "
          DM_CLI " ctl $a status >%s/as.json; i=0; until " DM_CLI " ctl --ledger --json | "
          "grep -q '\"demoted_bytes\": 33554432' && [ $(" DM_CLI " ctl --ledger --json | grep -c "
          "'\"live_bytes\": 33554432') = 2 ] || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done; "
          DM_CLI " top $a -n 1 </dev/null >%s/top; "
          "echo borrower=$b; kill -TERM $b; wait $b; echo second=$?; "
          "echo lender=$a; kill -TERM $a; wait $a; echo first=$?; cat %s/aerr >&2; cat %s/a)",
          dir, name, dir, dir, dir, dir, dir, dir, dir);
    int a = 0;
    const char *at = strstr(r.out, "lender=");
    cr_assert(at && sscanf(at, "lender=%d", &a) == 1, "%s", r.out);
    cr_assert(strstr(r.out, "second=0\n"), "the borrower did not load:\n%s%s", r.out, r.err);
    char line[160];
    snprintf(line, sizeof line,
             " ms: asked pid %d (lendable 32.00 MiB) ", a);
    cr_assert(strstr(r.err, "vramshim: borrow: out of memory for 8.00 MiB on device 0, waited "),
              "%s", r.err);
    cr_assert(strstr(r.err, line), "expected '%s' in:\n%s", line, r.err);
    cr_assert(strstr(strstr(r.err, line), ": released 32.00 MiB; retrying\n"), "%s", r.err);
    cr_assert(strstr(r.err, " asked for 8388608 bytes: demoted 33554432, released 33554432 to "
                            "the driver\n"),
              "%s", r.err);
    cr_assert(strstr(r.out, "first=0\n"), "%s%s", r.out, r.err);
    cr_assert_eq(json_integer_value(json_object_get(r.last, "checksum_failures")), 0, "%s", r.out);
    /* `vramshim ctl PID status`: the borrower's and the lender's side. */
    json_t *bs = load("bs.json"), *as = load("as.json");
    json_t *bl = json_object_get(bs, "lending"), *al = json_object_get(as, "lending");
    cr_assert(json_is_true(json_object_get(bl, "ledger")));
    cr_assert_eq(num(bl, "borrows"), 1);
    cr_assert_eq(num(bl, "borrowed_bytes"), 32 << 20);
    cr_assert_eq(num(bl, "lends"), 0);
    cr_assert(json_is_true(json_object_get(al, "lent_out")));
    cr_assert_eq(num(al, "lends"), 1);
    cr_assert_eq(num(al, "lent_released_bytes"), 32 << 20);
    cr_assert_eq(num(al, "borrows"), 0);
    json_decref(bs);
    json_decref(as);
    /* `vramshim top` of the lender, once the ledger has both processes' numbers after the lend
     * (published every 500 ms): what it lent, and both processes of the GPU's ledger, the lender
     * marked, its weights demoted and nothing lendable left, the borrower's loaded. */
    int b = 0;
    at = strstr(r.out, "borrower=");
    cr_assert(at && sscanf(at, "borrower=%d", &b) == 1, "%s", r.out);
    char top[4096], row[160];
    snprintf(top, sizeof top, "%s/top", dir);
    dm_slurp(top, top, sizeof top);
    cr_assert(strstr(top, "\nlent 1 time (32.00 MiB released to the driver), refused "), "%s",
              top); /* refusals: the borrower may have asked before the lender was idle */
    cr_assert(strstr(top, ", lent memory not all back\nborrowed 0 times (0 B released by "
                          "peers)\n"),
              "%s", top);
    cr_assert(strstr(top, ": 2 processes under vramshim\n"), "%s", top);
    snprintf(row, sizeof row, "* %8d  %-16s %10s %10s %10s\n", a, "-", "32.00 MiB", "32.00 MiB",
             "0 B");
    cr_assert(strstr(top, row), "expected '%s' in:\n%s", row, top);
    snprintf(row, sizeof row, "  %8d  %-16s %10s ", b, "-", "32.00 MiB");
    cr_assert(strstr(top, row), "expected '%s' in:\n%s", row, top);
}

/* Writes DIR/borrow.ini, a borrower's policy: `sections`, then [lend] with wait only (it lends
 * nothing); its path in path[64]. */
static void borrower_policy(char *path, const char *sections, const char *wait)
{
    snprintf(path, 64, "%s/borrow.ini", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s[lend]\nwait = %s\n", sections, wait);
    fclose(f);
}

/* A stage's headroom (docs/stages.md) borrows as an allocation does: on the shared 48 MiB GPU
 * the lender's idle weights hold 32 MiB; a server with 8 MiB of weights whose request stage
 * wants 24 MiB free cannot get it from its own victims, asks the lender, which releases its
 * weights, and the headroom is met; both answer with intact weights. */
Test(demo_lend, an_unmet_stage_headroom_borrows_from_an_idle_lender)
{
    char borrower[64];
    borrower_policy(borrower, "[stage answer]\nmatch = llm_answer_request\nheadroom = 24MiB\n\n",
                    "2s");
    dm_sh(&r,
          "(" START_LENDER("48MiB") SHIM "VRAMSHIM_POLICY=%s " SERVER "--weights-mib 8 "
          "--interval-ms 100 --requests 1 >%s/b 2>%s/berr; echo second=$?; echo lender=$a; "
          "cat %s/berr >&2; kill -TERM $a; wait $a; echo first=$?; cat %s/aerr >&2; cat %s/a)",
          dir, name, borrower, dir, dir, dir, dir, dir);
    int a = 0;
    const char *at = strstr(r.out, "lender=");
    cr_assert(at && sscanf(at, "lender=%d", &a) == 1, "%s", r.out);
    cr_assert(strstr(r.out, "second=0\n"), "the borrower failed:\n%s%s", r.out, r.err);
    const char *line = strstr(r.err, "vramshim: borrow: headroom 24.00 MiB of answer short by ");
    cr_assert(line, "no borrow for the headroom:\n%s", r.err);
    char asked[64];
    snprintf(asked, sizeof asked, " ms: asked pid %d (lendable 32.00 MiB) ", a);
    cr_assert(strstr(line, asked) && strstr(line, ": released 32.00 MiB; retrying\n"), "%s",
              r.err);
    cr_assert(strstr(r.err, " bytes: demoted 33554432, released 33554432 to the driver\n"), "%s",
              r.err);
    cr_assert_null(strstr(r.err, "still short"), "%s", r.err);
    cr_assert(strstr(r.out, "first=0\n"), "%s%s", r.out, r.err);
    cr_assert_eq(json_integer_value(json_object_get(r.last, "checksum_failures")), 0, "%s", r.out);
}

/* A lender that stops answering (SIGSTOP) costs a borrower its [lend] wait, no more, and the
 * borrower fails with the usual out-of-memory error; one killed while a borrower waits for it
 * ends the wait at once (and its memory, back with the driver, serves the retry); the dead
 * lender's entry leaves the ledger. */
Test(demo_lend, a_hung_or_killed_lender_costs_the_borrower_at_most_its_wait)
{
    char borrower[64];
    borrower_policy(borrower, "", "1s");
    dm_sh(&r,
          "(" START_LENDER("48MiB") "kill -STOP $a; echo lender=$a; s=$(date +%%s%%N); "
          SHIM "VRAMSHIM_POLICY=%s " SERVER "--weights-mib 32 --requests 1 2>%s/b1; "
          "echo hung=$? ms=$((($(date +%%s%%N)-s)/1000000)); "
          SHIM "VRAMSHIM_POLICY=%s " SERVER "--weights-mib 32 --requests 1 2>%s/b2 & b=$!; "
          "i=0; until grep -q 'vramshim: out of memory' %s/b2 || [ $i -ge 600 ]; do sleep 0.02; "
          "i=$((i+1)); done; sleep 0.2; kill -KILL $a; wait $b; echo killed=$?; wait $a; "
          DM_CLI " ctl --ledger --json >%s/after.json; cat %s/b1 %s/b2 >&2)",
          dir, name, borrower, dir, borrower, dir, dir, dir, dir, dir);
    int a = 0, ms = 0;
    const char *at = strstr(r.out, "lender=");
    cr_assert(at && sscanf(at, "lender=%d", &a) == 1, "%s", r.out);
    at = strstr(r.out, "hung=3 ms=");
    cr_assert(at && sscanf(at, "hung=3 ms=%d", &ms) == 1, "the borrower did not fail with out "
              "of memory:\n%s%s", r.out, r.err);
    cr_assert_lt(ms, 10000, "the borrower waited %d ms for a hung lender", ms);
    char line[160];
    snprintf(line, sizeof line, "asked pid %d (lendable 32.00 MiB) ", a);
    const char *first = strstr(r.err, line);
    cr_assert(first && strstr(first, ": no reply in time; retrying\n"), "expected '%s' in:\n%s",
              line, r.err);
    /* The killed lender's memory went back to the driver with it: the retry has it. */
    cr_assert(strstr(r.out, "killed=0\n"), "%s%s", r.out, r.err);
    cr_assert(strstr(first + 1, line) &&
                  strstr(strstr(first + 1, line), ": closed the connection without a reply"),
              "expected '%s' a second time in:\n%s", line, r.err);
    json_t *after = load("after.json");
    cr_assert_null(entry_of(after, a), "the killed lender is still in the ledger");
    json_decref(after);
}

/* Three processes and more: six borrowers at once (16 MiB each) and one lender (32 MiB) on a
 * shared 48 MiB GPU: the lender lends once, every borrower finishes, answered or out of memory,
 * none hangs, and the ledger keeps only the lender; the lender's weights stay intact. */
Test(demo_lend, many_borrowers_at_once_are_bounded, .timeout = 120)
{
    char borrower[64];
    borrower_policy(borrower, "", "2s");
    dm_sh(&r,
          "(" START_LENDER("48MiB") "echo lender=$a; s=$(date +%%s); pids=; "
          "for k in 1 2 3 4 5 6; do " SHIM "VRAMSHIM_POLICY=%s " SERVER
          "--weights-mib 16 --requests 1 --interval-ms 0 >/dev/null 2>%s/b$k & pids=\"$pids $!\"; "
          "done; for p in $pids; do wait $p; echo borrower=$?; done; "
          "echo s=$(($(date +%%s)-s)); " DM_CLI " ctl --ledger --json >%s/after.json; "
          "kill -TERM $a; wait $a; echo first=$?; cat %s/aerr %s/b? >&2; cat %s/a)",
          dir, name, borrower, dir, dir, dir, dir, dir);
    int a = 0, loaded = 0, s = -1;
    const char *at = strstr(r.out, "lender=");
    cr_assert(at && sscanf(at, "lender=%d", &a) == 1, "%s", r.out);
    for (at = r.out; (at = strstr(at, "borrower=")); at++) {
        int st = atoi(at + 9);
        /* 3: out of memory loading, 4: out of memory for a request's KV cache. */
        cr_assert(st == 0 || st == 3 || st == 4, "a borrower exited with %d:\n%s%s", st, r.out,
                  r.err);
        loaded += st == 0;
    }
    cr_assert_geq(loaded, 1, "no borrower loaded:\n%s%s", r.out, r.err);
    at = strstr(r.out, "s=");
    cr_assert(at && sscanf(at, "s=%d", &s) == 1);
    cr_assert_lt(s, 60, "the borrowers took %d s", s);
    int lends = 0;
    for (at = r.err; (at = strstr(at, "demoted 33554432, released 33554432 to the driver")); at++)
        lends++;
    cr_assert_eq(lends, 1, "the lender lent %d times:\n%s", lends, r.err);
    cr_assert(strstr(r.out, "first=0\n"), "%s%s", r.out, r.err);
    cr_assert_eq(json_integer_value(json_object_get(r.last, "checksum_failures")), 0, "%s", r.out);
    json_t *after = load("after.json");
    json_t *procs = json_object_get(json_array_get(json_object_get(after, "gpus"), 0), "processes");
    cr_assert_eq(json_array_size(procs), 1, "the ledger keeps borrowers that are gone");
    cr_assert_not_null(entry_of(after, a));
    json_decref(after);
}
