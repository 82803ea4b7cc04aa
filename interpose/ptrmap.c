/* Open-addressing pointer map (see ptrmap.h). */
#include "interpose/ptrmap.h"

#include <stdlib.h>

static inline uint64_t mix(uint64_t key)
{
    /* Device pointers are granule aligned: mix so the low bits of the index vary. */
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 32;
    return key;
}

/* Index of key's slot, or of the empty slot ending its probe run (cap > 0). */
static inline size_t probe(const struct vs_ptrmap *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = mix(key) & mask;
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

__attribute__((noinline)) static bool grow(struct vs_ptrmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct vs_ptrmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    struct vs_ptrmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            m->slots[probe(m, old[i].key)] = old[i];
    free(old);
    return true;
}

bool vs_ptrmap_put(struct vs_ptrmap *m, uint64_t key, uint64_t val, uint64_t *old)
{
    if ((m->used + 1) * 2 > m->cap && !grow(m))
        return false;
    size_t i = probe(m, key);
    *old = m->slots[i].key ? m->slots[i].val : 0;
    m->used += m->slots[i].key == 0;
    m->slots[i].key = key;
    m->slots[i].val = val;
    return true;
}

bool vs_ptrmap_take(struct vs_ptrmap *m, uint64_t key, uint64_t *val)
{
    if (!m->cap)
        return false;
    size_t hole = probe(m, key);
    if (m->slots[hole].key != key)
        return false;
    *val = m->slots[hole].val;
    /* Backward shift: move later members of the probe run into the hole when their home slot
     * does not lie cyclically between the hole and themselves. */
    size_t mask = m->cap - 1;
    for (size_t j = (hole + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = mix(m->slots[j].key) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->used--;
    return true;
}
