/* A process to control through its socket: after its first hooked driver call (a memory query,
 * as frameworks make at start) it prints "ready PID", then serves stdin commands, one per line:
 * "alloc" (1 MiB, prints "ok"), "fork" (a child that exits at once through exit(), prints
 * "ok" once it is gone), "quit". It never calls the vramshim API itself. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interpose_prog.h"

int main(void)
{
    setup_primary();
    size_t free_b, total_b;
    CK(cuMemGetInfo(&free_b, &total_b));
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strcmp(line, "alloc\n")) {
            CUdeviceptr p;
            CK(cuMemAlloc(&p, 1024 * 1024));
            printf("ok\n");
            fflush(stdout);
        } else if (!strcmp(line, "fork\n")) {
            pid_t pid = fork();
            if (pid == 0)
                exit(0);
            waitpid(pid, NULL, 0);
            printf("ok\n");
            fflush(stdout);
        } else if (!strcmp(line, "quit\n")) {
            break;
        }
    }
    return 0;
}
