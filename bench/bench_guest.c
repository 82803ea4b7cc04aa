/* Cost of a caught C++ exception in a host process with and without the preloaded shim: the
 * shim must leave the host's unwinder alone (docs/footprint.md). tests/progs/guest_host reaches
 * the driver (simcuda) by dlopen, then dlopens a C++ library and times a loop of throws and
 * catches; it runs ROUNDS times each way, alternating, and the median per-exception time of each
 * side is compared. Target: the same within 10%.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXCEPTIONS "20000"
#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ns per exception of one run, or a negative value when the run failed. */
static double run(int shim)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        setenv("LD_LIBRARY_PATH", VS_BUILD_DIR "/sim", 1);
        if (shim)
            setenv("LD_PRELOAD", VS_BUILD_DIR "/libvramshim.so", 1);
        else
            unsetenv("LD_PRELOAD");
        execl(VS_BUILD_DIR "/tests/progs/guest_host", "guest_host", EXCEPTIONS, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[4096] = {0};
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    const char *line = strstr(buf, "ns_per_exception ");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !line)
        return -1;
    return atof(line + strlen("ns_per_exception "));
}

int main(void)
{
    double plain[ROUNDS], shim[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        plain[r] = run(0);
        shim[r] = run(1);
        if (plain[r] < 0 || shim[r] < 0) {
            fprintf(stderr,
                    "bench_guest: tests/progs/guest_host failed (is `make progs` built?)\n");
            return 1;
        }
    }
    qsort(plain, ROUNDS, sizeof *plain, cmp_double);
    qsort(shim, ROUNDS, sizeof *shim, cmp_double);
    double a = plain[ROUNDS / 2], b = shim[ROUNDS / 2];
    printf("caught C++ exceptions in a dlopen'ed library (" EXCEPTIONS " per run), median of %d "
           "runs each\n",
           ROUNDS);
    printf("%-22s %12s %12s %7s  %s\n", "", "no shim ns", "shim ns", "ratio", "target");
    printf("%-22s %12.1f %12.1f %7.3f  < 1.10: %s\n", "per exception", a, b, b / a,
           b / a < 1.10 ? "met" : "NOT met");
    printf("(spread without the shim: %.1f..%.1f ns; with it: %.1f..%.1f ns)\n", plain[0],
           plain[ROUNDS - 1], shim[0], shim[ROUNDS - 1]);
    return 0;
}
