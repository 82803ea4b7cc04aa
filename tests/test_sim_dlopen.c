/* A program that dlopens libcuda.so.1 with LD_LIBRARY_PATH=build/sim gets simcuda and can
 * allocate, copy, map and free through it. */
#include "test_sim_common.h"

#include <string.h>
#include <sys/wait.h>

Test(sim_dlopen, roundtrip_program_gets_simcuda)
{
    const char *cmd = "env LD_LIBRARY_PATH=" VS_BUILD_DIR "/sim " VS_BUILD_DIR
                      "/tests/progs/sim_dlopen_roundtrip 2>&1";
    FILE *out = popen(cmd, "r");
    cr_assert_not_null(out);
    char text[1024] = "";
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = 0;
    int status = pclose(out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "program failed:\n%s", text);
    cr_assert_str_eq(text, "driver: simcuda\n"
                           "allocated and copied 1048576 bytes\n"
                           "mapped 2097152 bytes and copied through them\n"
                           "freed; data intact\n");
}
