/* The interposer's pointer -> size map (interpose/ptrmap.c, compiled in here: the shim keeps its
 * symbols local). Checked against a plain list under random insertions and removals of
 * granule-aligned keys, the shape of device pointers, across several table growths. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "interpose/ptrmap.c"

#define KEYS 5000

Test(interpose_ptrmap, matches_a_reference_under_random_puts_and_takes)
{
    static uint64_t keys[KEYS], vals[KEYS];
    static bool present[KEYS];
    for (unsigned i = 0; i < KEYS; i++)
        keys[i] = 0x7f0000000000ull + (uint64_t)i * 0x200000;
    struct vs_ptrmap m = {0};
    unsigned seed = 12345, live = 0;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % KEYS;
        uint64_t got;
        if (present[i] && (seed & 1)) {
            cr_assert(vs_ptrmap_take(&m, keys[i], &got), "step %d: key %u missing", step, i);
            cr_assert_eq(got, vals[i], "step %d: key %u value", step, i);
            present[i] = false;
            live--;
        } else if (!present[i]) {
            cr_assert(!vs_ptrmap_take(&m, keys[i], &got), "step %d: absent key %u found", step, i);
            uint64_t old = 1;
            vals[i] = seed;
            cr_assert(vs_ptrmap_put(&m, keys[i], vals[i], &old));
            cr_assert_eq(old, 0);
            present[i] = true;
            live++;
        }
        cr_assert_eq(m.used, live, "step %d", step);
    }
    for (unsigned i = 0; i < KEYS; i++) {
        uint64_t got;
        cr_assert_eq(vs_ptrmap_take(&m, keys[i], &got), present[i], "key %u", i);
        if (present[i])
            cr_assert_eq(got, vals[i]);
    }
    cr_assert_eq(m.used, 0);
    free(m.slots);
}

Test(interpose_ptrmap, put_of_a_present_key_replaces_and_returns_the_old_value)
{
    struct vs_ptrmap m = {0};
    uint64_t old = 7, got;
    cr_assert(vs_ptrmap_put(&m, 0x200000, 10, &old));
    cr_assert_eq(old, 0);
    cr_assert(vs_ptrmap_put(&m, 0x200000, 20, &old));
    cr_assert_eq(old, 10);
    cr_assert_eq(m.used, 1);
    cr_assert(vs_ptrmap_take(&m, 0x200000, &got));
    cr_assert_eq(got, 20);
    cr_assert(!vs_ptrmap_take(&m, 0x200000, &got));
    free(m.slots);
}
