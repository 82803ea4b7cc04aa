/* simcuda address-range sets: a sorted array of non-overlapping ranges with binary search.
 *
 * Invariant: items are sorted by base and never overlap; the set does not own them.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

size_t vs_sim_ranges_lower(const struct vs_sim_ranges *set, uintptr_t addr)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->items[mid]->base < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct vs_sim_range *vs_sim_ranges_find(const struct vs_sim_ranges *set, uintptr_t addr)
{
    size_t i = vs_sim_ranges_lower(set, addr);
    if (i < set->count && set->items[i]->base == addr)
        return set->items[i];
    if (i == 0)
        return NULL;
    struct vs_sim_range *r = set->items[i - 1];
    return addr - r->base < r->size ? r : NULL;
}

struct vs_sim_range *vs_sim_ranges_overlap(const struct vs_sim_ranges *set, uintptr_t base,
                                           size_t size)
{
    struct vs_sim_range *r = vs_sim_ranges_find(set, base);
    if (r)
        return r;
    size_t i = vs_sim_ranges_lower(set, base);
    if (i < set->count && set->items[i]->base - base < size)
        return set->items[i];
    return NULL;
}

int vs_sim_ranges_insert(struct vs_sim_ranges *set, struct vs_sim_range *range)
{
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct vs_sim_range **items = realloc(set->items, cap * sizeof *items);
        if (!items)
            return -1;
        set->items = items;
        set->cap = cap;
    }
    size_t i = vs_sim_ranges_lower(set, range->base);
    memmove(set->items + i + 1, set->items + i, (set->count - i) * sizeof *set->items);
    set->items[i] = range;
    set->count++;
    return 0;
}

void vs_sim_ranges_remove(struct vs_sim_ranges *set, struct vs_sim_range *range)
{
    size_t i = vs_sim_ranges_lower(set, range->base);
    if (i >= set->count || set->items[i] != range)
        return;
    memmove(set->items + i, set->items + i + 1, (set->count - i - 1) * sizeof *set->items);
    set->count--;
}
