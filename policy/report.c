/* Loading the policy the shim runs with, reporting through the caller's log (see policy.h). */
#include <stdio.h>

#include "policy/policy.h"

struct vs_policy *vs_policy_load_reported(const char *path, struct vs_names *names,
                                          void (*sink)(const char *line))
{
    struct vs_policy_diags d = {0};
    struct vs_policy *p = vs_policy_load(path, names, &d);
    for (size_t i = 0; i < d.n; i++)
        sink(d.v[i].text);
    if (!p) {
        char line[1024];
        snprintf(line, sizeof line,
                 "policy %.900s not used (%zu error%s): running without a policy", path,
                 d.errors, d.errors == 1 ? "" : "s");
        sink(line);
    }
    vs_policy_diags_free(&d);
    return p;
}
