/* Policy parser and validator (policy/read.c, policy/build.c) on text in memory: a policy or
 * diagnostics, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "policy/diag.h"
#include "policy/names.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vs_names *names = vs_names_create();
    if (!names)
        abort();
    struct vs_policy_diags diags = {0};
    struct vs_policy *p = vs_policy_parse((const char *)data, size, "fuzz.ini", names, &diags);
    vs_policy_free(p);
    vs_policy_diags_free(&diags);
    vs_names_destroy(names);
    return 0;
}
