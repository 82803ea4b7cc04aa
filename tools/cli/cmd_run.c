/* `vramshim run [OPTIONS] -- CMD [ARGS...]`: runs a program under the shim, the one command a
 * user needs.
 *
 * The child gets: LD_PRELOAD with the shim's absolute path in front of any existing entries;
 * VRAMSHIM_POLICY / VRAMSHIM_TRACE (absolute paths) / VRAMSHIM_MODE from the options;
 * PYTHONPATH with vramshim's python/ directory in front (its sitecustomize installs the Python
 * auto-hook and then runs the program's own sitecustomize); in arena mode
 * PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync unless the user set that variable or passed
 * --keep-torch-alloc. It is set for every program, not only for a `python` command, because
 * Python programs are often started through launchers and shell scripts; programs without
 * PyTorch never read it.
 *
 * The shim and python/ are found from this executable's location: DIR/libvramshim.so and
 * DIR/../python, where DIR holds `vramshim` (the build folder, or the GPU bundle's bin/).
 * The policy is validated before the program starts, so a typo is reported at once rather than
 * as a run without a policy. Signals SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent
 * to vramshim are passed on to the child (those a terminal sends to the whole process group
 * already reach it and are not sent twice); the exit status is the child's, or 128 + signal
 * when it was killed, like a shell. Errors: 2 bad usage, 1 unusable policy or shim, 126 a
 * program that cannot be executed, 127 one that is not found. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/size.h"
#include "tools/cli/commands.h"

static void vs_run_usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim run [--policy FILE] [--trace FILE] [--mode arena|passthrough]\n"
            "                    [--keep-torch-alloc] [--decode exact|blend|off]\n"
            "                    [--decode-budget SIZE] -- CMD [ARGS...]\n"
            "\n"
            "Runs CMD with libvramshim.so preloaded: allocations go through the vramshim arena,\n"
            "and the policy's stages demote idle memory instead of running out.\n"
            "\n"
            "  --policy FILE       policy file (VRAMSHIM_POLICY); checked before CMD starts\n"
            "  --trace FILE        write the JSON Lines allocation trace (VRAMSHIM_TRACE)\n"
            "  --mode MODE         arena (default) or passthrough: only observe and trace\n"
            "  --keep-torch-alloc  leave PyTorch's caching allocator on (by default, in arena\n"
            "                      mode, PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync is set\n"
            "                      unless it is already set)\n"
            "  --decode MODE       substitute the bundled tiled decoder for the VAE decode of\n"
            "                      diffusers (VRAMSHIM_DECODE): exact, blend or off (default)\n"
            "  --decode-budget SIZE  its working memory, e.g. 2GiB (VRAMSHIM_DECODE_BUDGET);\n"
            "                      default: the device's free memory at the call less a margin\n"
            "\n"
            "Python programs also get the auto-hook: entry to a function a `match` pattern of\n"
            "the policy names begins that stage, its exit ends it. Signals are passed to CMD;\n"
            "the exit status is CMD's (128 + N when signal N killed it).\n");
}

struct vs_run_opts {
    const char *policy, *trace, *mode, *decode, *decode_budget;
    enum vs_policy_decode_mode policy_decode; /* the policy's [decode] section */
    uint64_t policy_decode_budget;
    bool keep_torch_alloc;
    char **argv; /* CMD ARGS..., NULL-terminated */
};

/* Value of option `name` at argv[*i] ("--name VALUE" or "--name=VALUE"); NULL when argv[*i]
 * is another option. Sets *missing when the value is absent. */
static const char *vs_opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0)
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (argv[*i][len] != '\0')
        return NULL;
    if (*i + 1 >= argc || !strcmp(argv[*i + 1], "--")) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* 0, or an exit status after printing why (-1: --help was printed). */
static int vs_run_parse(int argc, char **argv, struct vs_run_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (!strcmp(a, "--")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vramshim run: no program after '--'\n");
                return 2;
            }
            o->argv = argv + i + 1;
            return 0;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            vs_run_usage(stdout);
            return -1;
        }
        if (!strcmp(a, "--keep-torch-alloc")) {
            o->keep_torch_alloc = true;
            continue;
        }
        if ((v = vs_opt_value(argc, argv, &i, "--policy", &missing)))
            o->policy = v;
        else if ((v = vs_opt_value(argc, argv, &i, "--trace", &missing)))
            o->trace = v;
        else if ((v = vs_opt_value(argc, argv, &i, "--mode", &missing)))
            o->mode = v;
        else if ((v = vs_opt_value(argc, argv, &i, "--decode-budget", &missing)))
            o->decode_budget = v;
        else if ((v = vs_opt_value(argc, argv, &i, "--decode", &missing)))
            o->decode = v;
        if (missing) {
            fprintf(stderr, "vramshim run: option '%s' needs a value\n", a);
            return 2;
        }
        if (v)
            continue;
        if (a[0] == '-')
            fprintf(stderr, "vramshim run: unknown option '%s' (see vramshim run --help)\n", a);
        else
            fprintf(stderr,
                    "vramshim run: missing '--' before the program: vramshim run [OPTIONS] -- %s "
                    "...\n",
                    a);
        return 2;
    }
    fprintf(stderr, "vramshim run: missing '-- CMD [ARGS...]' (see vramshim run --help)\n");
    return 2;
}

/* The policy loads exactly as the shim will load it; every diagnostic is printed. Its [decode]
 * section goes into o. */
static bool vs_policy_usable(const char *path, struct vs_run_opts *o)
{
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    struct vs_policy *p = names ? vs_policy_load(path, names, &d) : NULL;
    bool ok = p != NULL;
    if (ok) {
        o->policy_decode = vs_policy_decode(p);
        o->policy_decode_budget = vs_policy_decode_budget(p);
    }
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.v[i].text);
    if (!ok)
        fprintf(stderr, "vramshim run: policy '%s' is not usable%s; the program was not started\n",
                path, names ? "" : " (out of memory)");
    vs_policy_free(p);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
    return ok;
}

/* Absolute form of path (resolving only the working directory: the file may not exist yet). */
static char *vs_absolute(const char *path)
{
    char cwd[PATH_MAX], *out;
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return strdup(path);
    return asprintf(&out, "%s/%s", cwd, path) < 0 ? NULL : out;
}

/* Whether CMD can be run: 0, or 126/127 after a message. */
static int vs_check_program(const char *cmd)
{
    if (strchr(cmd, '/')) {
        struct stat st;
        if (stat(cmd, &st) != 0) {
            fprintf(stderr, "vramshim run: %s: %s\n", cmd, strerror(errno));
            return 127;
        }
        if (S_ISDIR(st.st_mode) || access(cmd, X_OK) != 0) {
            fprintf(stderr, "vramshim run: %s: %s\n", cmd,
                    S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
            return 126;
        }
        return 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%.*s%s%s", (int)len, p, len ? "/" : "", cmd);
        if (access(full, X_OK) == 0)
            return 0;
        p = colon ? colon + 1 : NULL;
    }
    fprintf(stderr, "vramshim run: program '%s' not found in PATH\n", cmd);
    return 127;
}

/* Prepends entry to the list variable `name` (sep-separated), unless it is already its first. */
static int vs_prepend(const char *name, const char *entry, const char *sep)
{
    const char *old = getenv(name);
    if (!old || !*old)
        return setenv(name, entry, 1);
    size_t n = strlen(entry);
    if (!strncmp(old, entry, n) && (old[n] == '\0' || strchr(sep, old[n])))
        return 0;
    char *v;
    if (asprintf(&v, "%s%c%s", entry, sep[0], old) < 0)
        return -1;
    int rc = setenv(name, v, 1);
    free(v);
    return rc;
}

/* The directory holding this executable, or NULL. */
static char *vs_exe_dir(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    return strdup(self);
}

/* Sets the child's environment; 0, or an exit status after a message. */
static int vs_run_environment(const struct vs_run_opts *o)
{
    char *dir = vs_exe_dir(), shim[PATH_MAX], pydir[PATH_MAX], probe[PATH_MAX + 32];
    if (!dir) {
        fprintf(stderr, "vramshim run: cannot read /proc/self/exe to find libvramshim.so\n");
        return 1;
    }
    snprintf(shim, sizeof shim, "%s/libvramshim.so", dir);
    snprintf(probe, sizeof probe, "%s/../python", dir);
    free(dir);
    if (access(shim, R_OK) != 0) {
        fprintf(stderr, "vramshim run: cannot find the shim: %s: %s\n", shim, strerror(errno));
        return 1;
    }
    if (vs_prepend("LD_PRELOAD", shim, ": ") != 0)
        goto oom;

    char hook[PATH_MAX + 64];
    snprintf(hook, sizeof hook, "%s/vramshim/__init__.py", probe);
    if (realpath(probe, pydir) && access(hook, R_OK) == 0) {
        if (vs_prepend("PYTHONPATH", pydir, ":") != 0)
            goto oom;
    } else {
        fprintf(stderr, "vramshim run: warning: Python package not found in %s; the Python "
                        "auto-hook is off\n", probe);
    }

    char *abs;
    if (o->policy) {
        if (!(abs = vs_absolute(o->policy)) || setenv("VRAMSHIM_POLICY", abs, 1) != 0)
            goto oom;
        free(abs);
    }
    if (o->trace) {
        if (!(abs = vs_absolute(o->trace)) || setenv("VRAMSHIM_TRACE", abs, 1) != 0)
            goto oom;
        free(abs);
    }
    if (o->mode && setenv("VRAMSHIM_MODE", o->mode, 1) != 0)
        goto oom;
    /* Decode substitution: the command line, else the environment, else the policy. */
    if (o->decode && setenv("VRAMSHIM_DECODE", o->decode, 1) != 0)
        goto oom;
    if (!getenv("VRAMSHIM_DECODE") && o->policy_decode != VS_POLICY_DECODE_OFF &&
        setenv("VRAMSHIM_DECODE", vs_policy_decode_names[o->policy_decode], 1) != 0)
        goto oom;
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)o->policy_decode_budget);
    if (o->decode_budget && setenv("VRAMSHIM_DECODE_BUDGET", o->decode_budget, 1) != 0)
        goto oom;
    if (!getenv("VRAMSHIM_DECODE_BUDGET") && o->policy_decode_budget &&
        setenv("VRAMSHIM_DECODE_BUDGET", bytes, 1) != 0)
        goto oom;
    const char *mode = getenv("VRAMSHIM_MODE");
    bool arena = !mode || !strcmp(mode, "arena");
    if (arena && !o->keep_torch_alloc && !getenv("PYTORCH_CUDA_ALLOC_CONF")) {
        if (setenv("PYTORCH_CUDA_ALLOC_CONF", "backend:cudaMallocAsync", 1) != 0)
            goto oom;
        fprintf(stderr, "vramshim: set PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync so the "
                        "arena serves every PyTorch tensor (--keep-torch-alloc keeps PyTorch's "
                        "caching allocator)\n");
    }
    return 0;
oom:
    fprintf(stderr, "vramshim run: out of memory setting the environment\n");
    return 1;
}

/* --- the child -------------------------------------------------------------------------------- */

static const int vs_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
static volatile sig_atomic_t vs_child;

static void vs_forward(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    /* A terminal's ^C/^\ (si_code > 0: from the kernel) reached the child's process group too. */
    if ((sig == SIGINT || sig == SIGQUIT) && info && info->si_code > 0)
        return;
    if (vs_child > 0)
        kill((pid_t)vs_child, sig);
}

static int vs_spawn(char **argv)
{
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof vs_forwarded / sizeof *vs_forwarded; i++)
        sigaddset(&block, vs_forwarded[i]);
    /* Blocked until the child's pid is known, so no signal is lost in between. */
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {.sa_sigaction = vs_forward, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof vs_forwarded / sizeof *vs_forwarded; i++)
        sigaction(vs_forwarded[i], &sa, NULL);

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "vramshim run: fork: %s\n", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    if (pid == 0) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (size_t i = 0; i < sizeof vs_forwarded / sizeof *vs_forwarded; i++)
            sigaction(vs_forwarded[i], &dfl, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "vramshim run: %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    vs_child = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);

    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "vramshim run: waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int vs_cmd_run(int argc, char **argv)
{
    struct vs_run_opts o = {0};
    int rc = vs_run_parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (o.mode && strcmp(o.mode, "arena") != 0 && strcmp(o.mode, "passthrough") != 0) {
        fprintf(stderr, "vramshim run: --mode '%s': expected arena or passthrough\n", o.mode);
        return 2;
    }
    if (o.decode && strcmp(o.decode, "exact") != 0 && strcmp(o.decode, "blend") != 0 &&
        strcmp(o.decode, "off") != 0) {
        fprintf(stderr, "vramshim run: --decode '%s': expected exact, blend or off\n", o.decode);
        return 2;
    }
    uint64_t budget;
    if (o.decode_budget && (vs_policy_size_parse(o.decode_budget, &budget) != VS_SIZE_OK ||
                            budget == 0)) {
        fprintf(stderr, "vramshim run: --decode-budget '%s': expected a size such as 2GiB or "
                        "512MiB\n", o.decode_budget);
        return 2;
    }
    if (o.policy && !vs_policy_usable(o.policy, &o))
        return 1;
    if ((rc = vs_check_program(o.argv[0])) != 0)
        return rc;
    if ((rc = vs_run_environment(&o)) != 0)
        return rc;
    return vs_spawn(o.argv);
}
