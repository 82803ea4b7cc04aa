/* Running the demo generators for `vramshim demo` (see demo_run.h). */
#include "tools/cli/demo_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int vs_demo_exists(const char *path, char *err, size_t errlen, const char *what)
{
    if (!access(path, R_OK))
        return 0;
    snprintf(err, errlen, "%s not found at %s", what, path);
    return -1;
}

int vs_demo_paths_find(struct vs_demo_paths *paths, const char *policy_dir, bool need_sim,
                       char *err, size_t errlen)
{
    char exe[VS_DEMO_PATH];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot read /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    const char *dir = dirname(exe);
    snprintf(paths->shim, sizeof paths->shim, "%s/libvramshim.so", dir);
    snprintf(paths->sim_dir, sizeof paths->sim_dir, "%s/sim", dir);
    snprintf(paths->programs, sizeof paths->programs, "%s/demo", dir);
    if (policy_dir)
        snprintf(paths->policies, sizeof paths->policies, "%s", policy_dir);
    else
        snprintf(paths->policies, sizeof paths->policies, "%s/../policy/examples", dir);
    snprintf(paths->python, sizeof paths->python, "%s/../python", dir);
    char sim[VS_DEMO_PATH + 16];
    snprintf(sim, sizeof sim, "%s/libcuda.so.1", paths->sim_dir);
    if (vs_demo_exists(paths->shim, err, errlen, "the shim (make shim)") ||
        vs_demo_exists(paths->programs, err, errlen, "the demo programs (make demos)") ||
        vs_demo_exists(paths->policies, err, errlen, "the example policies (--policy-dir DIR)") ||
        (need_sim && vs_demo_exists(sim, err, errlen, "the simulated driver (make sim)")))
        return -1;
    /* Shown to users and written into results: without the "bin/.." detour. */
    char *real = realpath(paths->policies, NULL);
    if (real && strlen(real) < sizeof paths->policies)
        strcpy(paths->policies, real);
    free(real);
    return 0;
}

/* --- child processes -------------------------------------------------------------------------- */

/* True when `extra` sets the variable of environment entry e ("NAME=..."). */
static bool vs_demo_overridden(const char *e, char *const *extra)
{
    size_t len = strcspn(e, "=");
    for (size_t i = 0; extra[i]; i++)
        if (!strncmp(extra[i], e, len + 1))
            return true;
    return false;
}

/* The environment of a run: ours without anything that would change what the run does
 * (preloads, vramshim settings but VRAMSHIM_LOG, and simcuda's unless `keep_sim`: on the real
 * device simcuda is only ever a stand-in the caller set up) and without what `extra` sets (the
 * caller appends the user's own LD_LIBRARY_PATH and PYTHONPATH), plus `extra`. */
static char **vs_demo_env(char *const *extra, bool keep_sim)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    size_t n_extra = 0;
    while (extra[n_extra])
        n_extra++;
    char **env = calloc(n + n_extra + 1, sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        bool drop = !strncmp(e, "LD_PRELOAD=", 11) || (!keep_sim && !strncmp(e, "SIMCUDA_", 8)) ||
                    (!strncmp(e, "VRAMSHIM_", 9) && strncmp(e, "VRAMSHIM_LOG=", 13)) ||
                    vs_demo_overridden(e, extra);
        if (!drop)
            env[k++] = environ[i];
    }
    for (size_t i = 0; i < n_extra; i++)
        env[k++] = extra[i];
    return env;
}

static double vs_demo_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for pid at most timeout_s seconds (then kills it). Returns the exit status, -1 when it
 * was killed by a signal (named in problem). */
static int vs_demo_wait(pid_t pid, int timeout_s, char *problem, size_t len)
{
    double deadline = vs_demo_now() + timeout_s;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(problem, len, "waitpid: %s", strerror(errno));
            return -1;
        }
        if (vs_demo_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(problem, len, "no result within %d s: killed (--timeout)", timeout_s);
            return -1;
        }
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    snprintf(problem, len, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
    return -1;
}

/* Starts argv with stdout to out_path (or a pipe when out_fd is not NULL), stderr to log_path
 * and stdin from a pipe when in_fd is not NULL. Returns the pid, or -1 with problem set. */
static pid_t vs_demo_spawn(char *const argv[], char *const env[], const char *out_path,
                           const char *log_path, int *in_fd, int *out_fd, char *problem, size_t len)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
    if ((in_fd && pipe2(in_pipe, O_CLOEXEC)) || (out_fd && pipe2(out_pipe, O_CLOEXEC))) {
        snprintf(problem, len, "pipe: %s", strerror(errno));
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    if (in_fd)
        posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    if (out_fd)
        posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    if (in_fd) {
        close(in_pipe[0]);
        *in_fd = in_pipe[1];
    }
    if (out_fd) {
        close(out_pipe[1]);
        *out_fd = out_pipe[0];
    }
    if (rc) {
        snprintf(problem, len, "cannot run %s: %s", argv[0], strerror(rc));
        if (in_fd)
            close(*in_fd);
        if (out_fd)
            close(*out_fd);
        return -1;
    }
    return pid;
}

/* The last non-empty line of a file (without its newline), or "" when there is none. */
static void vs_demo_last_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(buf, len, "%s", line);
    }
    fclose(f);
}

/* The last line of a file that parses as a JSON object, or NULL. */
static json_t *vs_demo_last_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[8192];
    json_t *last = NULL;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (json_is_object(j)) {
            json_decref(last);
            last = j;
        } else {
            json_decref(j);
        }
    }
    fclose(f);
    return last;
}

int vs_demo_describe(const struct vs_demo_paths *paths, const char *program,
                     struct vs_demo_scenario_info *info, char *err, size_t errlen)
{
    memset(info, 0, sizeof *info);
    snprintf(info->program, sizeof info->program, "%s/%s", paths->programs, program);
    /* Only PATH: `#!/usr/bin/env python3` must find the interpreter (conda-only images). */
    char path[4096];
    snprintf(path, sizeof path, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char *argv[] = {info->program, "--describe", NULL}, *env[] = {path, NULL};
    int out_fd;
    pid_t pid = vs_demo_spawn(argv, env, NULL, "/dev/null", NULL, &out_fd, err, errlen);
    if (pid < 0)
        return -1;
    FILE *out = fdopen(out_fd, "r");
    json_error_t jerr;
    json_t *j = out ? json_loadf(out, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    if (out)
        fclose(out);
    else
        close(out_fd);
    int status = vs_demo_wait(pid, 30, err, errlen);
    const char *name, *title, *policy, *expected;
    json_int_t gpu, taken;
    if (!j || status != 0 ||
        json_unpack(j, "{s:s, s:s, s:s, s:s, s:I, s:I}", "scenario", &name, "title", &title,
                    "policy", &policy, "expected_failure", &expected, "gpu_bytes", &gpu,
                    "taken_bytes", &taken)) {
        snprintf(err, errlen, "%s --describe gave no scenario description (exit %d)",
                 info->program, status);
        json_decref(j);
        return -1;
    }
    snprintf(info->name, sizeof info->name, "%s", name);
    snprintf(info->title, sizeof info->title, "%s", title);
    snprintf(info->policy, sizeof info->policy, "%s/%s", paths->policies, policy);
    snprintf(info->expected_failure, sizeof info->expected_failure, "%s", expected);
    info->gpu_bytes = (uint64_t)gpu;
    info->taken_bytes = (uint64_t)taken;
    json_t *comp = json_object_get(j, "companion");
    if (comp) {
        const char *cp = json_string_value(json_object_get(comp, "program")),
                   *cpol = json_string_value(json_object_get(comp, "policy")),
                   *cargs = json_string_value(json_object_get(comp, "args"));
        if (!cp || !cpol || !cargs || strchr(cp, '/') ||
            strlen(cargs) >= sizeof info->companion_args) {
            snprintf(err, errlen, "%s --describe: malformed \"companion\"", info->program);
            json_decref(j);
            return -1;
        }
        snprintf(info->companion, sizeof info->companion, "%s/%s", paths->programs, cp);
        snprintf(info->companion_policy, sizeof info->companion_policy, "%s/%s", paths->policies,
                 cpol);
        snprintf(info->companion_args, sizeof info->companion_args, "%s", cargs);
    }
    json_decref(j);
    return 0;
}

/* On a real GPU a vram_holder process holds all the device's memory but what the scenario's
 * GPU had free (its size less what another process held there), so the scenario runs at its
 * real size on any larger card. */
struct vs_demo_holder {
    pid_t pid;
    int in_fd;
};

enum { VS_DEMO_HOLDER_TOO_SMALL = 4 }; /* vram_holder's exit status: less is free than asked */

/* Returns 0, or -1 with problem set (*unfit: the device has too little memory for it). */
static int vs_demo_holder_start(const struct vs_demo_paths *paths,
                                const struct vs_demo_scenario_info *info, char *const env[],
                                const char *log, struct vs_demo_holder *h, bool *unfit,
                                char *problem, size_t len)
{
    char program[VS_DEMO_PATH + 16], leave[32];
    snprintf(program, sizeof program, "%s/vram_holder", paths->programs);
    /* A companion holds its memory itself. */
    snprintf(leave, sizeof leave, "%llu",
             (unsigned long long)(info->gpu_bytes - (info->companion[0] ? 0 : info->taken_bytes)));
    char *argv[] = {program, "--leave", leave, NULL};
    int out_fd;
    h->pid = vs_demo_spawn(argv, env, NULL, log, &h->in_fd, &out_fd, problem, len);
    if (h->pid < 0)
        return -1;
    char line[128] = "";
    FILE *out = fdopen(out_fd, "r");
    if (!out || !fgets(line, sizeof line, out) || strncmp(line, "holding ", 8)) {
        close(h->in_fd);
        int st = vs_demo_wait(h->pid, 10, problem, len);
        char last[512];
        vs_demo_last_line(log, last, sizeof last);
        *unfit = st == VS_DEMO_HOLDER_TOO_SMALL;
        snprintf(problem, len, "the vram_holder process (the memory this GPU has beyond the "
                               "scenario's) failed (exit %d): %s", st, last);
        if (out)
            fclose(out);
        else
            close(out_fd);
        return -1;
    }
    fclose(out);
    return 0;
}

static void vs_demo_holder_stop(struct vs_demo_holder *h)
{
    char ignored[128];
    close(h->in_fd);
    vs_demo_wait(h->pid, 10, ignored, sizeof ignored);
}

void vs_demo_outcome_clear(struct vs_demo_outcome *o)
{
    json_decref(o->result);
    json_decref(o->companion_result);
    memset(o, 0, sizeof *o);
}

/* --- the companion: the other process on the GPU, run beside the scenario's ------------------- */

/* A private XDG_RUNTIME_DIR (ledger, control sockets) and simulated GPU for one run. */
struct vs_demo_shared {
    char dir[64];        /* /tmp/vramshim-demo-XXXXXX, mode 0700 */
    const char *name;    /* its last component: the SIMCUDA_SHARED name */
    char xdg_env[96], shared_env[96];
};

static int vs_demo_shared_make(struct vs_demo_shared *sh, char *problem, size_t len)
{
    snprintf(sh->dir, sizeof sh->dir, "/tmp/vramshim-demo-XXXXXX");
    if (!mkdtemp(sh->dir)) {
        snprintf(problem, len, "cannot create a directory in /tmp: %s", strerror(errno));
        return -1;
    }
    sh->name = strrchr(sh->dir, '/') + 1;
    snprintf(sh->xdg_env, sizeof sh->xdg_env, "XDG_RUNTIME_DIR=%s", sh->dir);
    snprintf(sh->shared_env, sizeof sh->shared_env, "SIMCUDA_SHARED=%s", sh->name);
    return 0;
}

/* Removes the directory (the ledger; the processes removed their sockets) and the simulated
 * GPU's shared memory. */
static void vs_demo_shared_remove(const struct vs_demo_shared *sh)
{
    char sub[96], path[512];
    snprintf(sub, sizeof sub, "%s/vramshim", sh->dir);
    DIR *d = opendir(sub);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(sub);
    rmdir(sh->dir);
    snprintf(path, sizeof path, "/simcuda-%u-%s", (unsigned)geteuid(), sh->name);
    shm_unlink(path);
}

/* Whether a line of file `path` contains `text`. */
static bool vs_demo_file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Polls until a line of `path` contains `text`, pid exits or timeout_s pass. */
static bool vs_demo_await_line(const char *path, const char *text, pid_t pid, int timeout_s)
{
    double deadline = vs_demo_now() + timeout_s;
    while (vs_demo_now() < deadline) {
        if (vs_demo_file_has(path, text))
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return false;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    return false;
}

/* Appends to buf the lines of path that contain `text`. */
static void vs_demo_collect(const char *path, const char *text, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t used = strlen(buf);
    while (f && fgets(line, sizeof line, f) && used < len)
        if (strstr(line, text))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", line,
                                     strchr(line, '\n') ? "" : "\n");
    if (f)
        fclose(f);
}

/* Starts the companion with env (its stdout to out, its log to o->companion_log) and waits for
 * its "ready:" line. Returns its pid, or -1 with o->problem set. */
static pid_t vs_demo_companion_start(const struct vs_demo_scenario_info *info, char *const env[],
                                     const char *out, struct vs_demo_outcome *o)
{
    char args[sizeof info->companion_args], *argv[16];
    size_t n = 0;
    snprintf(args, sizeof args, "%s", info->companion_args);
    argv[n++] = (char *)info->companion;
    for (char *save, *t = strtok_r(args, " ", &save); t && n + 1 < 16;
         t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    argv[n] = NULL;
    pid_t pid = vs_demo_spawn(argv, env, out, o->companion_log, NULL, NULL, o->problem,
                              sizeof o->problem);
    if (pid < 0)
        return -1;
    if (!vs_demo_await_line(out, "ready:", pid, 120)) {
        char last[512];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        vs_demo_last_line(o->companion_log, last, sizeof last);
        snprintf(o->problem, sizeof o->problem, "%.4000s did not get ready; its log (%.4000s) "
                 "ends: %s", info->companion, o->companion_log, last);
        return -1;
    }
    return pid;
}

/* After the scenario's program: once the companion took back what it lent (its log says so; at
 * most 60 s), stops it (SIGTERM: it ends between requests) and reads its result. */
static void vs_demo_companion_stop(pid_t pid, const char *out, struct vs_demo_outcome *o)
{
    if (vs_demo_file_has(o->companion_log, "vramshim: lend: pid "))
        vs_demo_await_line(o->companion_log, "lent bytes back", pid, 60);
    kill(pid, SIGTERM);
    char ignored[256];
    o->companion_status = vs_demo_wait(pid, 60, ignored, sizeof ignored);
    o->companion_result = vs_demo_last_json(out);
}

int vs_demo_run(const struct vs_demo_paths *paths, const struct vs_demo_scenario_info *info,
                enum vs_demo_mode mode, const struct vs_demo_options *opts,
                struct vs_demo_outcome *o)
{
    memset(o, 0, sizeof *o);
    o->exit_status = o->companion_status = -1;
    const char *tag = mode == VS_DEMO_BASELINE ? "passthrough" : "vramshim";
    bool companion = info->companion[0];
    char out[3 * VS_DEMO_PATH], companion_out[3 * VS_DEMO_PATH];
    snprintf(o->trace, sizeof o->trace, "%s/%s.%s.jsonl", opts->out_dir, info->name, tag);
    snprintf(o->log, sizeof o->log, "%s/%s.%s.log", opts->out_dir, info->name, tag);
    snprintf(out, sizeof out, "%s/%s.%s.out", opts->out_dir, info->name, tag);
    char holder_log[3 * VS_DEMO_PATH];
    snprintf(holder_log, sizeof holder_log, "%s/%s.%s.holder.log", opts->out_dir, info->name, tag);
    snprintf(companion_out, sizeof companion_out, "%s/%s.%s.companion.out", opts->out_dir,
             info->name, tag);
    if (companion) /* an empty companion_log says the scenario runs none */
        snprintf(o->companion_log, sizeof o->companion_log, "%s/%s.%s.companion.log",
                 opts->out_dir, info->name, tag);
    /* Nothing of an earlier run may pass for this one's. */
    const char *const stale[] = {o->trace, o->log, out, holder_log, companion_out,
                                 o->companion_log};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
        unlink(stale[i]);

    char preload[VS_DEMO_PATH + 16], trace[3 * VS_DEMO_PATH], policy[3 * VS_DEMO_PATH],
        libpath[2 * VS_DEMO_PATH], pythonpath[2 * VS_DEMO_PATH], vram[64], taken[64];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", paths->shim);
    snprintf(trace, sizeof trace, "VRAMSHIM_TRACE=%s", o->trace);
    snprintf(policy, sizeof policy, "VRAMSHIM_POLICY=%s", info->policy);
    const char *user_path = getenv("LD_LIBRARY_PATH");
    if (opts->real_device)
        snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s", user_path ? user_path : "");
    else
        snprintf(libpath, sizeof libpath, "LD_LIBRARY_PATH=%s%s%s", paths->sim_dir,
                 user_path ? ":" : "", user_path ? user_path : "");
    snprintf(vram, sizeof vram, "SIMCUDA_VRAM=%llu", (unsigned long long)info->gpu_bytes);
    snprintf(taken, sizeof taken, "SIMCUDA_VRAM_TAKEN=%llu", (unsigned long long)info->taken_bytes);
    struct vs_demo_shared sh;
    if (companion && vs_demo_shared_make(&sh, o->problem, sizeof o->problem))
        return -1;
    char *extra[12], *cextra[10];
    size_t n = 0, cn = 0;
    extra[n++] = libpath;
    if (!opts->real_device) {
        extra[n++] = vram;
        /* The companion holds its memory itself, on the same simulated GPU. */
        extra[n++] = companion ? sh.shared_env : taken;
    }
    if (companion)
        extra[n++] = sh.xdg_env;
    memcpy(cextra, extra, n * sizeof *extra);
    cn = n;
    char **plain_env = vs_demo_env((char *[]){libpath, NULL}, opts->real_device);
    extra[n++] = preload;
    extra[n++] = trace;
    extra[n++] = mode == VS_DEMO_BASELINE ? "VRAMSHIM_MODE=passthrough" : "VRAMSHIM_MODE=arena";
    char companion_policy[3 * VS_DEMO_PATH];
    snprintf(companion_policy, sizeof companion_policy, "VRAMSHIM_POLICY=%s",
             info->companion_policy);
    cextra[cn++] = preload;
    cextra[cn++] = extra[n - 1];
    if (mode == VS_DEMO_VRAMSHIM) {
        cextra[cn++] = companion_policy;
        cextra[cn++] = "VRAMSHIM_LOG=info"; /* its lend lines, "lent bytes back" */
    }
    cextra[cn] = NULL;
    if (mode == VS_DEMO_VRAMSHIM) {
        extra[n++] = policy;
        /* What `vramshim run` adds for Python programs: the auto-hook's sitecustomize. */
        const char *user_pythonpath = getenv("PYTHONPATH");
        snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s%s%s", paths->python,
                 user_pythonpath ? ":" : "", user_pythonpath ? user_pythonpath : "");
        extra[n++] = pythonpath;
    }
    extra[n] = NULL;
    char **env = vs_demo_env(extra, opts->real_device);
    char **companion_env = vs_demo_env(cextra, opts->real_device);
    if (!env || !plain_env || !companion_env) {
        snprintf(o->problem, sizeof o->problem, "out of memory");
        free(env);
        free(plain_env);
        free(companion_env);
        if (companion)
            vs_demo_shared_remove(&sh);
        return -1;
    }

    struct vs_demo_holder holder = {.pid = -1};
    int rc = -1;
    if (opts->real_device &&
        vs_demo_holder_start(paths, info, plain_env, holder_log, &holder, &o->unfit, o->problem,
                             sizeof o->problem))
        goto done;
    pid_t companion_pid = -1;
    if (companion &&
        (companion_pid = vs_demo_companion_start(info, companion_env, companion_out, o)) < 0)
        goto done;
    char *argv[] = {(char *)info->program, NULL};
    double t0 = vs_demo_now();
    pid_t pid = vs_demo_spawn(argv, env, out, o->log, NULL, NULL, o->problem, sizeof o->problem);
    if (pid >= 0)
        o->exit_status = vs_demo_wait(pid, opts->timeout_s, o->problem, sizeof o->problem);
    o->seconds = vs_demo_now() - t0;
    if (companion_pid > 0) {
        vs_demo_companion_stop(companion_pid, companion_out, o);
        vs_demo_collect(o->log, "vramshim: borrow:", o->negotiation, sizeof o->negotiation);
        vs_demo_collect(o->companion_log, "vramshim: lend:", o->negotiation,
                        sizeof o->negotiation);
    }
    if (holder.pid > 0)
        vs_demo_holder_stop(&holder);
    char last[512];
    vs_demo_last_line(o->log, last, sizeof last);
    if (pid >= 0 && o->exit_status < 0) {
        size_t used = strlen(o->problem);
        snprintf(o->problem + used, sizeof o->problem - used, "; its log ends: %s", last);
    }
    if (pid < 0 || o->exit_status < 0)
        goto done;
    o->result = vs_demo_last_json(out);
    if (!o->result) {
        snprintf(o->problem, sizeof o->problem, "the program printed no result line (exit %d); "
                 "its log (%s) ends: %s", o->exit_status, o->log, last);
        goto done;
    }
    o->completed = json_is_true(json_object_get(o->result, "completed"));
    char err[512];
    if (vs_demo_trace_moves(o->trace, &o->demoted_bytes, &o->demotions, &o->promoted_bytes,
                            &o->promotions, err, sizeof err)) {
        snprintf(o->problem, sizeof o->problem, "%s", err);
        goto done;
    }
    rc = 0;
done:
    free(env);
    free(plain_env);
    free(companion_env);
    if (companion)
        vs_demo_shared_remove(&sh);
    return rc;
}

int vs_demo_trace_moves(const char *path, uint64_t *demoted, unsigned *demotions,
                        uint64_t *promoted, unsigned *promotions, char *err, size_t errlen)
{
    *demoted = *promoted = 0;
    *demotions = *promotions = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: no trace: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        json_t *j = json_loads(line, 0, NULL);
        if (!json_is_object(j)) {
            snprintf(err, errlen, "%s:%u: not a JSON object", path, lineno);
            json_decref(j);
            rc = -1;
            break;
        }
        const char *ev = json_string_value(json_object_get(j, "ev"));
        json_int_t size = json_integer_value(json_object_get(j, "size"));
        if (ev && !strcmp(ev, "demote")) {
            *demoted += (uint64_t)size;
            (*demotions)++;
        } else if (ev && !strcmp(ev, "promote")) {
            *promoted += (uint64_t)size;
            (*promotions)++;
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    return rc;
}
