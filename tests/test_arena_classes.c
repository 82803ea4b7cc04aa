/* Size classes: every small request maps to a class that holds it and wastes at most 1/8 of
 * the request (512 B granularity below 4 KiB), classes grow strictly, and a page of any class
 * fits in one granule.
 */
#include <criterion/criterion.h>

#include "allocator/internal.h"

Test(arena_classes, classes_hold_requests_with_bounded_waste)
{
    size_t prev = 0;
    for (unsigned c = 0; c < VS_NCLASSES; c++) {
        size_t s = vs_small_class_size(c);
        cr_assert_gt(s, prev, "class %u not larger than the one before", c);
        cr_assert_eq(s % VS_ALIGN, 0, "class %u size %zu not 512-aligned", c, s);
        prev = s;
    }
    cr_assert_eq(prev, VS_SMALL_MAX);
    for (size_t n = 1; n <= VS_SMALL_MAX; n += (n < 8192 ? 1 : 37)) {
        int c = vs_small_class(n);
        cr_assert_geq(c, 0);
        size_t s = vs_small_class_size((unsigned)c);
        cr_assert_geq(s, n, "size %zu in class %d of %zu bytes", n, c, s);
        if (c > 0)
            cr_assert_lt(vs_small_class_size((unsigned)c - 1), n,
                         "size %zu not in its tightest class", n);
        if (n > 4096)
            cr_assert_leq(s - n, n / 8, "size %zu wastes %zu bytes", n, s - n);
    }
    cr_assert_eq(vs_small_class(VS_SMALL_MAX + 1), -1);
}
