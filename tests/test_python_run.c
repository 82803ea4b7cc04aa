/* `vramshim run`: the child's environment, sitecustomize chaining, exit status and signal
 * forwarding, and the error messages of bad command lines. */
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "python_fixture.h"

/* Runs `vramshim run ARGS...` (argv without the CLI itself) with env additions. */
static struct vs_run run_cli(const char *const *args, const char *const *env)
{
    const char *argv[32] = {VS_CLI, "run"};
    size_t n = 2;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return vs_run(argv, 0, env);
}

/* The value printed for NAME by a child running `sh -c 'echo NAME=$NAME ...'`. */
static const char *printed(const char *out, const char *name, char *buf, size_t len)
{
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *at = strstr(out, key);
    cr_assert(at, "no %s in output: %s", name, out);
    at += strlen(key);
    size_t n = strcspn(at, "\n");
    snprintf(buf, len, "%.*s", (int)n, at);
    return buf;
}

#define SHOW_ENV                                                                                   \
    "echo LD_PRELOAD=$LD_PRELOAD; echo PYTHONPATH=$PYTHONPATH;"                                    \
    " echo VRAMSHIM_POLICY=$VRAMSHIM_POLICY;"                                                      \
    " echo VRAMSHIM_TRACE=$VRAMSHIM_TRACE; echo VRAMSHIM_MODE=$VRAMSHIM_MODE;"                     \
    " echo TORCH=${PYTORCH_CUDA_ALLOC_CONF-unset}"

Test(python_run, child_environment)
{
    const char *args[] = {"--policy", "tests/progs/py_stages.ini", "--trace", "t.jsonl",
                          "--mode", "arena", "--", "sh", "-c", SHOW_ENV, NULL};
    const char *env[] = {"LD_PRELOAD=/lib/extra.so", "PYTHONPATH=/mine", NULL};
    cr_assert_eq(chdir(VS_SOURCE_DIR), 0);
    struct vs_run r = run_cli(args, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    char v[4096], want[4096];
    cr_expect_str_eq(printed(r.out, "LD_PRELOAD", v, sizeof v),
                     VS_BUILD_DIR "/libvramshim.so:/lib/extra.so");
    char *python_dir = realpath(VS_SOURCE_DIR "/python", NULL);
    snprintf(want, sizeof want, "%s:/mine", python_dir);
    free(python_dir);
    cr_expect_str_eq(printed(r.out, "PYTHONPATH", v, sizeof v), want);
    cr_expect_str_eq(printed(r.out, "VRAMSHIM_POLICY", v, sizeof v),
                     VS_SOURCE_DIR "/tests/progs/py_stages.ini");
    cr_expect_str_eq(printed(r.out, "VRAMSHIM_TRACE", v, sizeof v), VS_SOURCE_DIR "/t.jsonl");
    cr_expect_str_eq(printed(r.out, "VRAMSHIM_MODE", v, sizeof v), "arena");
    cr_expect_str_eq(printed(r.out, "TORCH", v, sizeof v), "backend:cudaMallocAsync");
    cr_expect(strstr(r.err, "vramshim: set PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync"),
              "%s", r.raw_err);
    vs_run_free(&r);
}

Test(python_run, torch_allocator_left_alone_when_asked)
{
    char v[256];
    /* the user's own setting wins, silently */
    const char *args[] = {"--", "sh", "-c", SHOW_ENV, NULL};
    const char *env[] = {"PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True", NULL};
    struct vs_run r = run_cli(args, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(printed(r.out, "TORCH", v, sizeof v), "expandable_segments:True");
    cr_expect_str_eq(r.err, "");
    vs_run_free(&r);
    /* --keep-torch-alloc, and passthrough mode (which only observes) */
    const char *keep[] = {"--keep-torch-alloc", "--", "sh", "-c", SHOW_ENV, NULL};
    const char *pass[] = {"--mode=passthrough", "--", "sh", "-c", SHOW_ENV, NULL};
    const char *const *cases[] = {keep, pass};
    for (int i = 0; i < 2; i++) {
        r = run_cli(cases[i], NULL);
        cr_assert_eq(r.status, 0, "%s", r.raw_err);
        cr_expect_str_eq(printed(r.out, "TORCH", v, sizeof v), "unset");
        cr_expect_str_eq(r.err, "");
        vs_run_free(&r);
    }
}

Test(python_run, existing_sitecustomize_still_runs)
{
    char dir[] = "/tmp/vs_site_XXXXXX", file[64];
    cr_assert(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/sitecustomize.py", dir);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs("import sys\nsys.stdout.write('user sitecustomize ran\\n')\nMARK = 'user'\n", f);
    fclose(f);
    char pythonpath[128];
    snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s", dir);
    const char *env[] = {pythonpath, NULL};
    const char *args[] = {"--policy", VS_PYPROG("py_stages.ini"), "--", vs_python(), "-c",
                          "import sitecustomize, vramshim.autohook as h;"
                          "print(sitecustomize.MARK, h.installed is not None)",
                          NULL};
    struct vs_run r = run_cli(args, env);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    cr_expect_str_eq(r.out, "user sitecustomize ran\nuser True\n");
    vs_run_free(&r);
    unlink(file);
    rmdir(dir);
}

Test(python_run, exit_status_is_the_childs)
{
    const char *exit7[] = {"--", vs_python(), "-c", "import sys; sys.exit(7)", NULL};
    struct vs_run r = run_cli(exit7, NULL);
    cr_expect_eq(r.status, 7, "%s", r.raw_err);
    vs_run_free(&r);
    const char *killed[] = {"--", "sh", "-c", "kill -KILL $$", NULL};
    r = run_cli(killed, NULL);
    cr_expect_eq(r.status, 128 + SIGKILL, "%s", r.raw_err);
    vs_run_free(&r);
}

/* Starts `vramshim run -- python3 -c SCRIPT`, waits for the child's "ready" line, sends sig to
 * vramshim (not to the child) and returns vramshim's exit status and the child's output. */
static int signalled(const char *script, int sig, char *out, size_t len)
{
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        execl(VS_CLI, VS_CLI, "run", "--", vs_python(), "-u", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *f = fdopen(pipefd[0], "r");
    cr_assert(f);
    char line[256] = "";
    cr_assert(fgets(line, sizeof line, f), "the child printed nothing");
    cr_assert_str_eq(line, "ready\n");
    cr_assert_eq(kill(pid, sig), 0);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "vramshim run itself was killed");
    return WEXITSTATUS(status);
}

Test(python_run, signals_are_passed_to_the_child)
{
    char out[256];
    /* SIGTERM kills the child: status 128 + 15, like a shell */
    cr_expect_eq(signalled("import time; print('ready'); time.sleep(30)", SIGTERM, out,
                           sizeof out),
                 143);
    /* a signal the child handles: it gets it and decides the status */
    cr_expect_eq(signalled("import signal, sys, time\n"
                           "signal.signal(signal.SIGUSR1, lambda *a: (print('got USR1'), "
                           "sys.exit(42)))\n"
                           "print('ready'); time.sleep(30)",
                           SIGUSR1, out, sizeof out),
                 42);
    cr_expect_str_eq(out, "got USR1\n");
    /* SIGINT sent by kill (not by a terminal) reaches it too */
    cr_expect_eq(
        signalled("import time\ntry:\n    print('ready'); time.sleep(30)\n"
                  "except KeyboardInterrupt:\n    print('interrupted'); raise SystemExit(3)",
                  SIGINT, out, sizeof out),
        3);
    cr_expect_str_eq(out, "interrupted\n");
}

Test(python_run, decode_options_reach_the_child)
{
    const char *args[] = {"--decode", "blend", "--decode-budget=1.5GiB", "--", "sh", "-c",
                          "echo D=$VRAMSHIM_DECODE; echo B=$VRAMSHIM_DECODE_BUDGET", NULL};
    struct vs_run r = run_cli(args, NULL);
    cr_assert_eq(r.status, 0, "%s", r.raw_err);
    char v[64];
    cr_expect_str_eq(printed(r.out, "D", v, sizeof v), "blend");
    cr_expect_str_eq(printed(r.out, "B", v, sizeof v), "1.5GiB");
    vs_run_free(&r);
}

/* The policy's [decode] section, unless the environment or the command line says otherwise. */
Test(python_run, policy_decode_section_reaches_the_child)
{
    char ini[] = "/tmp/vs_decode_policyXXXXXX";
    int fd = mkstemp(ini);
    cr_assert(fd >= 0);
    static const char text[] = "[decode]\nsubstitute = exact\nbudget = 2GiB\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    const char *show = "echo D=$VRAMSHIM_DECODE; echo B=$VRAMSHIM_DECODE_BUDGET";
    const char *policy_only[] = {"--policy", ini, "--", "sh", "-c", show, NULL};
    const char *flag[] = {"--policy", ini, "--decode", "blend", "--decode-budget", "1MiB", "--",
                          "sh", "-c", show, NULL};
    const char *env_off[] = {"VRAMSHIM_DECODE=off", NULL};
    const struct {
        const char *const *args, *const *env, *decode, *budget;
    } cases[] = {{policy_only, NULL, "exact", "2147483648"},
                 {policy_only, env_off, "off", "2147483648"},
                 {flag, env_off, "blend", "1MiB"}};
    for (size_t i = 0; i < 3; i++) {
        struct vs_run r = run_cli(cases[i].args, cases[i].env);
        cr_assert_eq(r.status, 0, "case %zu: %s", i, r.raw_err);
        char v[64];
        cr_expect_str_eq(printed(r.out, "D", v, sizeof v), cases[i].decode, "case %zu", i);
        cr_expect_str_eq(printed(r.out, "B", v, sizeof v), cases[i].budget, "case %zu", i);
        vs_run_free(&r);
    }
    unlink(ini);
}

Test(python_run, help_describes_the_command)
{
    const char *args[] = {"--help", NULL};
    struct vs_run r = run_cli(args, NULL);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "usage: vramshim run [--policy FILE] [--trace FILE]"), "%s", r.out);
    cr_expect(strstr(r.out, "--keep-torch-alloc"), "%s", r.out);
    vs_run_free(&r);
}

struct bad_case {
    const char *args[8];
    int status;
    const char *message; /* a line of stderr */
};

Test(python_run, bad_command_lines_are_explained)
{
    static const struct bad_case cases[] = {
        {{"python3", "x.py", NULL}, 2,
         "vramshim run: missing '--' before the program: vramshim run [OPTIONS] -- python3 ...\n"},
        {{"--policy", "p.ini", NULL}, 2,
         "vramshim run: missing '-- CMD [ARGS...]' (see vramshim run --help)\n"},
        {{"--", NULL}, 2, "vramshim run: no program after '--'\n"},
        {{"--polcy", "p.ini", "--", "true", NULL}, 2,
         "vramshim run: unknown option '--polcy' (see vramshim run --help)\n"},
        {{"--trace", "--", "true", NULL}, 2, "vramshim run: option '--trace' needs a value\n"},
        {{"--mode", "fast", "--", "true", NULL}, 2,
         "vramshim run: --mode 'fast': expected arena or passthrough\n"},
        {{"--decode", "fast", "--", "true", NULL}, 2,
         "vramshim run: --decode 'fast': expected exact, blend or off\n"},
        {{"--decode-budget", "2GB", "--", "true", NULL}, 2,
         "vramshim run: --decode-budget '2GB': expected a size such as 2GiB or 512MiB\n"},
        {{"--", "no-such-program-vs", NULL}, 127,
         "vramshim run: program 'no-such-program-vs' not found in PATH\n"},
        {{"--", "./no/such/file", NULL}, 127,
         "vramshim run: ./no/such/file: No such file or directory\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct vs_run r = run_cli(cases[i].args, NULL);
        cr_expect_eq(r.status, cases[i].status, "case %zu: status %d: %s", i, r.status,
                     r.raw_err);
        cr_expect_str_eq(r.raw_err, cases[i].message, "case %zu", i);
        vs_run_free(&r);
    }
}

Test(python_run, program_that_cannot_be_executed)
{
    char path[64], want[128];
    snprintf(path, sizeof path, "/tmp/vs_not_executable_%d", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fclose(f);
    cr_assert_eq(chmod(path, 0644), 0);
    const char *args[] = {"--", path, NULL};
    struct vs_run r = run_cli(args, NULL);
    cr_expect_eq(r.status, 126);
    snprintf(want, sizeof want, "vramshim run: %s: Permission denied\n", path);
    cr_expect_str_eq(r.raw_err, want);
    vs_run_free(&r);
    unlink(path);
}

Test(python_run, unusable_policy_stops_before_the_program)
{
    char path[] = "/tmp/vs_bad_policyXXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "[stage decode]\nmatch = VAE.decode\nheadroom = two GiB\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    const char *args[] = {"--policy", path, "--", "sh", "-c", "echo started", NULL};
    struct vs_run r = run_cli(args, NULL);
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.out, "");
    char want[512];
    snprintf(want, sizeof want, "%s:3: [stage decode] key 'headroom': bad size 'two GiB'", path);
    cr_expect(strstr(r.raw_err, want), "no '%s' in: %s", want, r.raw_err);
    snprintf(want, sizeof want,
             "vramshim run: policy '%s' is not usable; the program was not started\n", path);
    cr_expect(strstr(r.raw_err, want), "no '%s' in: %s", want, r.raw_err);
    vs_run_free(&r);
    unlink(path);

    const char *missing[] = {"--policy", "/no/such/policy.ini", "--", "true", NULL};
    r = run_cli(missing, NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.raw_err, "/no/such/policy.ini"), "%s", r.raw_err);
    cr_expect(strstr(r.raw_err, "vramshim run: policy '/no/such/policy.ini' is not usable"),
              "%s", r.raw_err);
    vs_run_free(&r);
}
