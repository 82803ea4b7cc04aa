/* Policy load time against the number of sections (the shim loads the policy at start-up):
 * 5,000, 10,000 and 20,000 stage sections, each with a pattern and an evict list, parsed and
 * checked from memory, best of 3. A linear loader doubles its time with the sections (ratio
 * about 2); the quadratic one measured 0.11 s, 1.1 s and 6.9 s. Above 12,288 names the name
 * registry is full, so the 20,000-section file is read and checked but refused at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/diag.h"
#include "policy/names.h"
#include "policy/policy.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *policy_text(size_t n)
{
    size_t cap = n * 96 + 64, at = 0;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    at += (size_t)snprintf(t + at, cap - at, "[global]\neviction = on\n");
    for (size_t i = 0; i < n; i++)
        at +=
            (size_t)snprintf(t + at, cap - at, "[stage s%zu]\nmatch = *phase_%zu*\nevict = s%zu\n",
                             i, i, (i + 1) % n);
    return t;
}

/* Best of 3 load times of n sections; *loaded says whether the policy was accepted. */
static double load_s(size_t n, int *loaded)
{
    char *text = policy_text(n);
    double best = 1e9;
    for (int rep = 0; text && rep < 3; rep++) {
        struct vs_names *names = vs_names_create();
        struct vs_policy_diags d = {0};
        double t0 = now_s();
        struct vs_policy *p = vs_policy_parse(text, strlen(text), "many.ini", names, &d);
        double t = now_s() - t0;
        best = t < best ? t : best;
        *loaded = p != NULL;
        vs_policy_free(p);
        vs_policy_diags_free(&d);
        vs_names_destroy(names);
    }
    free(text);
    return best;
}

int main(void)
{
    static const size_t sizes[] = {5000, 10000, 20000};
    double t[3];
    printf("%-10s %12s %10s  %s\n", "sections", "load (ms)", "ratio", "result");
    for (int i = 0; i < 3; i++) {
        int loaded = 0;
        t[i] = load_s(sizes[i], &loaded);
        char ratio[16] = "-";
        if (i)
            snprintf(ratio, sizeof ratio, "x%.2f", t[i] / t[i - 1]);
        printf("%-10zu %12.2f %10s  %s\n", sizes[i], t[i] * 1e3, ratio,
               loaded ? "loaded" : "refused (name registry full)");
    }
    printf("20000 vs 10000 sections: x%.2f (linear: about 2; quadratic: about 4)\n", t[2] / t[1]);
    return 0;
}
