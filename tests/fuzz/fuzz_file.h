/* Fuzz inputs handed to readers that take a path: the bytes go to one scratch file per process
 * and suffix (the readers choose the format by extension), rewritten for every input and
 * removed at exit. */
#ifndef VS_FUZZ_FILE_H
#define VS_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[64];

static void fuzz_file_remove(void)
{
    unlink(fuzz_path);
}

/* Writes data to the scratch file ending in suffix and returns its path; aborts if it cannot,
 * since a harness that tests nothing must not look like a clean run. */
static const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    if (!fuzz_path[0]) {
        snprintf(fuzz_path, sizeof fuzz_path, "/tmp/vs_fuzz_XXXXXX%s", suffix);
        int fd = mkstemps(fuzz_path, (int)strlen(suffix));
        if (fd < 0)
            abort();
        close(fd);
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    return fuzz_path;
}

#endif
