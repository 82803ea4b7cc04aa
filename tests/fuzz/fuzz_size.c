/* The one size parser (policy/size.c: --vram, --budget, policy sizes, VRAMSHIM_* sizes) and the
 * duration parser that shares its number reading ([lend] idle_after, wait): a value or a
 * refusal, and a parsed value reads the same with blanks around it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/size.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 3);
    if (!text)
        return 0;
    text[0] = ' ';
    memcpy(text + 1, data, size);
    text[size + 1] = ' ';
    text[size + 2] = '\0';
    uint64_t a, b;
    enum vs_size_status sa = vs_policy_size_parse(text + 1, &a),
                        sb = vs_policy_size_parse(text, &b);
    /* a NUL inside the input ends the text early for both: still the same answer */
    if (sa != sb || (sa == VS_SIZE_OK && a != b))
        abort();
    sa = vs_policy_duration_parse(text + 1, &a);
    sb = vs_policy_duration_parse(text, &b);
    if (sa != sb || (sa == VS_SIZE_OK && a != b))
        abort();
    free(text);
    return 0;
}
