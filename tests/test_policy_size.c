/* Sizes in policy files (headroom): units, fractions, blanks, and what is refused. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "policy/size.h"

static const struct {
    const char *text;
    uint64_t bytes;
} sz_ok[] = {
    {"0", 0},
    {"4096", 4096},
    {"4096B", 4096},
    {"1KiB", 1024},
    {"512MiB", 512ull << 20},
    {"2GiB", 2ull << 30},
    {"1TiB", 1ull << 40},
    {"1.5GiB", 3ull << 29},
    {"1.5 GiB", 3ull << 29},
    {"  2 gib  ", 2ull << 30},
    {"0.5KiB", 512},
    {"0.1KiB", 102},     /* 102.4 rounded down to a whole byte */
    {"6.54GiB", 7022271528ull}, /* floor(6.54 * 2^30) */
    {"0.000000001GiB", 1},
    {"16777215.999999TiB", 18446744073708452104ull},
    {"18446744073709551615", UINT64_MAX},
    {"0001MiB", 1ull << 20},
};

Test(policy_size, accepted_forms)
{
    for (size_t i = 0; i < sizeof sz_ok / sizeof sz_ok[0]; i++) {
        uint64_t v = 12345;
        cr_expect_eq(vs_policy_size_parse(sz_ok[i].text, &v), VS_SIZE_OK, "'%s'", sz_ok[i].text);
        cr_expect_eq(v, sz_ok[i].bytes, "'%s' gave %llu", sz_ok[i].text, (unsigned long long)v);
    }
}

Test(policy_size, refused_forms_leave_output_alone)
{
    static const char *const bad[] = {"", "  ", "GiB", "two GiB", "2GB", "2 MB", "2K", "2G",
                                      "-1GiB", "+1GiB", "1.GiB", ".5GiB", "1..5GiB", "1e3",
                                      "1 GiB extra", "1GiB2", "0x10", "1,5GiB", "2 Gi B"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        cr_expect_eq(vs_policy_size_parse(bad[i], &v), VS_SIZE_BAD, "'%s' accepted", bad[i]);
        cr_expect_eq(v, 777, "'%s' wrote the output", bad[i]);
    }
    cr_expect_eq(vs_policy_size_parse(NULL, &(uint64_t){0}), VS_SIZE_BAD);
}

Test(policy_size, overflow_is_too_large_not_wrapped)
{
    static const char *const big[] = {"18446744073709551616", "16777216TiB", "17179869184GiB",
                                      "99999999999999999999"};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        uint64_t v = 5;
        cr_expect_eq(vs_policy_size_parse(big[i], &v), VS_SIZE_TOO_LARGE, "'%s'", big[i]);
        cr_expect_eq(v, 5);
    }
}
