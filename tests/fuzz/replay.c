/* Main for the fuzz harnesses built without libFuzzer (the normal and ASan builds): runs
 * LLVMFuzzerTestOneInput once on each file named on the command line, so `make test` replays
 * the committed seeds and regression inputs. Exit 0 when every input ran. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 2;
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;
        do {
            if (len == cap) {
                cap = cap ? 2 * cap : 65536;
                uint8_t *grown = realloc(buf, cap);
                if (!grown) {
                    fprintf(stderr, "%s: out of memory\n", argv[i]);
                    return 2;
                }
                buf = grown;
            }
            n = fread(buf + len, 1, cap - len, f);
            len += n;
        } while (n);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
    }
    return 0;
}
