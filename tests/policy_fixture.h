/* Shared by the policy tests: load a policy from text with its own name registry, and keep the
 * diagnostics for assertions. Each criterion test runs in its own process, so the fixture's
 * statics are per test. */
#ifndef POLICY_FIXTURE_H
#define POLICY_FIXTURE_H

#include <criterion/criterion.h>
#include <string.h>

#include "policy/policy.h"

static struct vs_names *pf_names;
static struct vs_policy_diags pf_diags;

/* Parses text as file "t.ini"; previous diagnostics are dropped. */
static inline struct vs_policy *pf_parse(const char *text)
{
    if (!pf_names)
        pf_names = vs_names_create();
    cr_assert(pf_names);
    vs_policy_diags_free(&pf_diags);
    return vs_policy_parse(text, strlen(text), "t.ini", pf_names, &pf_diags);
}

/* Parses text that must load without errors or warnings. */
static inline struct vs_policy *pf_parse_ok(const char *text)
{
    struct vs_policy *p = pf_parse(text);
    cr_assert(p, "policy did not load: %s", pf_diags.n ? pf_diags.v[0].text : "(no message)");
    cr_assert_eq(pf_diags.n, 0, "unexpected diagnostic: %s", pf_diags.v[0].text);
    return p;
}

static inline const char *pf_name(uint32_t id)
{
    const char *s = vs_names_str(pf_names, id);
    return s ? s : "";
}

/* The rule named `name` (stage or tag), asserted to exist. */
static inline const struct vs_policy_rule *pf_rule(const struct vs_policy *p, const char *name)
{
    const struct vs_policy_rule *r = vs_policy_rule_of(p, vs_names_find(pf_names, name));
    cr_assert(r, "no rule '%s'", name);
    return r;
}

/* The names of a list joined with ",". */
static inline const char *pf_list(const struct vs_name_list *l)
{
    static char buf[512];
    buf[0] = '\0';
    for (size_t i = 0; i < l->n; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, pf_name(l->ids[i]));
    }
    return buf;
}

#endif
