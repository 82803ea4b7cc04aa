/* Loading a policy costs time linear in its size: the shim loads it at start-up, and files with
 * many sections once took quadratic time (20,000 sections: 6.9 s). Not timed: the test counts
 * the string comparisons (strcmp, memcmp) the parser makes for N and 2N sections, which double
 * for a linear parser and quadruple for a quadratic one. `make bench` (bench/policy_load.c)
 * shows the times. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/diag.h"
#include "policy/names.h"
#include "policy/policy.h"

/* Per thread: only the loading thread counts (criterion has threads of its own). */
static _Thread_local size_t compares;
static _Thread_local int counting;

/* These replace libc's for the statically linked policy layer in this binary. */
int strcmp(const char *a, const char *b)
{
    compares += counting;
    for (; *a && *a == *b; a++, b++)
        ;
    return (unsigned char)*a - (unsigned char)*b;
}

int memcmp(const void *a, const void *b, size_t n)
{
    compares += counting;
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

/* n stage sections, each with its own pattern and evicting the one before; every tenth pattern
 * repeats an earlier one and every tenth evict list names a stage twice, so the shadowing and
 * duplicate checks run. */
static char *policy_text(size_t n)
{
    size_t cap = n * 96 + 64, at = 0;
    char *t = malloc(cap);
    cr_assert(t);
    at += (size_t)snprintf(t + at, cap - at, "[global]\neviction = on\n");
    for (size_t i = 0; i < n; i++) {
        at += (size_t)snprintf(t + at, cap - at, "[stage s%zu]\nmatch = *f%zu*\n", i,
                               i % 10 == 9 ? i - 5 : i);
        if (i)
            at += (size_t)snprintf(t + at, cap - at, "evict = s%zu%s\n", i - 1,
                                   i % 10 == 3 ? ", s0, s0" : "");
    }
    return t;
}

/* Comparisons made loading a policy of n sections (which must load, with warnings only). */
static size_t load_compares(size_t n)
{
    char *text = policy_text(n);
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    compares = 0;
    counting = 1;
    struct vs_policy *p = vs_policy_parse(text, strlen(text), "many.ini", names, &d);
    counting = 0;
    cr_assert_not_null(p, "%s", d.n ? d.v[0].text : "no diagnostic");
    cr_assert_eq(d.errors, 0);
    cr_assert_gt(d.warnings, n / 10, "the duplicate and shadowing checks did not run");
    vs_policy_free(p);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
    free(text);
    return compares;
}

Test(policy_scale, comparisons_grow_linearly_with_sections)
{
    size_t a = load_compares(2000), b = load_compares(4000);
    cr_expect_lt((double)b / (double)a, 2.5,
                 "2000 sections: %zu comparisons, 4000: %zu (x%.2f; linear is x2, quadratic x4)",
                 a, b, (double)b / (double)a);
}
