/* Bad policy files: each file in tests/policy_bad/ ends with "; expect: MESSAGE" comment lines,
 * the exact diagnostics (file:line, section, key, message) loading it must give, in order.
 * A file whose expectations are all warnings must still load; any error means no policy.
 * Adding a case is adding a file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/policy_fixture.h"

#define PB_DIR VS_SOURCE_DIR "/tests/policy_bad"
#define PB_MAX_EXPECT 16

struct pb_case {
    char expect[PB_MAX_EXPECT][1024];
    size_t n;
    bool errors;
};

static void pb_read_expectations(const char *file, struct pb_case *c)
{
    FILE *f = fopen(file, "r");
    cr_assert(f, "%s: %s", file, strerror(errno));
    char line[1024];
    static const char tag[] = "; expect: ";
    *c = (struct pb_case){0};
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, tag, sizeof tag - 1))
            continue;
        cr_assert_lt(c->n, PB_MAX_EXPECT);
        line[strcspn(line, "\n")] = '\0';
        memcpy(c->expect[c->n], line + sizeof tag - 1, strlen(line + sizeof tag - 1) + 1);
        c->errors |= !strstr(c->expect[c->n], ": warning: ");
        c->n++;
    }
    fclose(f);
    cr_assert_gt(c->n, 0, "%s has no '; expect: ' line", file);
}

Test(policy_bad, every_file_gives_exactly_its_expected_messages)
{
    cr_assert_eq(chdir(PB_DIR), 0);
    glob_t g;
    cr_assert_eq(glob("*.ini", 0, NULL, &g), 0);
    cr_assert_geq(g.gl_pathc, 30, "the table of bad files is incomplete");
    struct vs_names *names = vs_names_create();
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *file = g.gl_pathv[i];
        struct pb_case c;
        pb_read_expectations(file, &c);
        struct vs_policy_diags d = {0};
        struct vs_policy *p = vs_policy_load(file, names, &d);
        cr_expect_eq(d.n, c.n, "%s: %zu diagnostics, expected %zu (first: %s)", file, d.n, c.n,
                     d.n ? d.v[0].text : "none");
        for (size_t k = 0; k < d.n && k < c.n; k++)
            cr_expect_str_eq(d.v[k].text, c.expect[k], "%s: diagnostic %zu", file, k + 1);
        cr_expect_eq(p == NULL, c.errors, "%s: %s", file,
                     c.errors ? "loaded despite errors" : "warnings alone must not stop loading");
        cr_expect_eq(d.errors + d.warnings, d.n);
        vs_policy_free(p);
        vs_policy_diags_free(&d);
    }
    vs_names_destroy(names);
    globfree(&g);
}

Test(policy_bad, diagnostics_carry_line_section_and_key_apart)
{
    struct vs_policy *p = pf_parse("[stage decode]\nmatch = VAE.decode\nheadroom = two GiB\n");
    cr_assert_null(p);
    cr_assert_eq(pf_diags.n, 1);
    const struct vs_policy_diag *d = &pf_diags.v[0];
    cr_expect_eq(d->severity, VS_DIAG_ERROR);
    cr_expect_eq(d->line, 3);
    cr_expect_str_eq(d->file, "t.ini");
    cr_expect_str_eq(d->section, "stage decode");
    cr_expect_str_eq(d->key, "headroom");
    cr_expect_str_eq(d->message, "bad size 'two GiB' (expected e.g. 2GiB, 512MiB)");
}

Test(policy_bad, missing_file_is_reported_not_fatal)
{
    struct vs_policy_diags d = {0};
    struct vs_names *names = vs_names_create();
    cr_assert_null(vs_policy_load(PB_DIR "/no-such-file.ini", names, &d));
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.v[0].text,
                     PB_DIR "/no-such-file.ini: cannot open: No such file or directory");
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
}

Test(policy_bad, directory_is_reported_not_fatal)
{
    struct vs_policy_diags d = {0};
    struct vs_names *names = vs_names_create();
    cr_assert_null(vs_policy_load(PB_DIR, names, &d));
    cr_assert_eq(d.n, 1);
    cr_expect(strstr(d.v[0].text, ": is a directory"), "%s", d.v[0].text);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
}

Test(policy_bad, nul_byte_names_its_line)
{
    static const char text[] = "[global]\neviction = on\nwater\0mark = 0.5\n";
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    cr_assert_null(vs_policy_parse(text, sizeof text - 1, "bin.ini", names, &d));
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.v[0].text, "bin.ini:3: contains a NUL byte: not a text file");
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
}

Test(policy_bad, oversized_file_is_refused)
{
    char path[] = "/tmp/vs_policy_big_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    static char block[1 << 16];
    memset(block, ';', sizeof block);
    for (int i = 0; i < 17; i++)
        cr_assert_eq(write(fd, block, sizeof block), (ssize_t)sizeof block);
    close(fd);
    struct vs_names *names = vs_names_create();
    struct vs_policy_diags d = {0};
    cr_expect_null(vs_policy_load(path, names, &d));
    unlink(path);
    cr_assert_eq(d.n, 1);
    cr_expect(strstr(d.v[0].text, ": larger than 1048576 bytes: not a policy file"), "%s",
              d.v[0].text);
    vs_policy_diags_free(&d);
    vs_names_destroy(names);
}

Test(policy_bad, null_diags_still_refuses_bad_file)
{
    struct vs_names *names = vs_names_create();
    static const char text[] = "[stage decode]\nevict = decode\n";
    cr_expect_null(vs_policy_parse(text, sizeof text - 1, "t.ini", names, NULL));
    vs_names_destroy(names);
}
