/* Lock-free insert-only string table (see strtab.h): open addressing, linear probing, entries
 * published by compare-and-swap into empty slots. */
#include <stdlib.h>
#include <string.h>

#include "policy/strtab.h"

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static int same(const struct vs_strtab_entry *e, uint64_t hash, const char *key, size_t len)
{
    return e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0;
}

int vs_strtab_init(struct vs_strtab *t, size_t cap, size_t max)
{
    size_t c = 8;
    while (c < cap)
        c *= 2;
    t->slots = calloc(c, sizeof *t->slots);
    if (!t->slots)
        return -1;
    t->cap = c;
    t->max = max < c ? max : c - 1;
    atomic_init(&t->count, 0);
    return 0;
}

void vs_strtab_destroy(struct vs_strtab *t)
{
    if (!t->slots)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(atomic_load_explicit(&t->slots[i], memory_order_relaxed));
    free(t->slots);
    t->slots = NULL;
}

const struct vs_strtab_entry *vs_strtab_find(const struct vs_strtab *t, const char *key,
                                             size_t len, size_t *slot)
{
    uint64_t h = hash_bytes(key, len);
    for (size_t i = 0; i < t->cap; i++) {
        size_t s = (h + i) & (t->cap - 1);
        struct vs_strtab_entry *e = atomic_load_explicit(&t->slots[s], memory_order_acquire);
        if (!e)
            return NULL;
        if (same(e, h, key, len)) {
            if (slot)
                *slot = s;
            return e;
        }
    }
    return NULL;
}

const struct vs_strtab_entry *vs_strtab_insert(struct vs_strtab *t, const char *key, size_t len,
                                               uint64_t value, size_t *slot)
{
    uint64_t h = hash_bytes(key, len);
    struct vs_strtab_entry *mine = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        size_t s = (h + i) & (t->cap - 1);
        struct vs_strtab_entry *e = atomic_load_explicit(&t->slots[s], memory_order_acquire);
        if (!e) {
            if (!mine) {
                /* Reserve room first, so the table never holds more than max entries. */
                if (atomic_fetch_add(&t->count, 1) >= t->max) {
                    atomic_fetch_sub(&t->count, 1);
                    return NULL;
                }
                mine = malloc(sizeof *mine + len + 1);
                if (!mine) {
                    atomic_fetch_sub(&t->count, 1);
                    return NULL;
                }
                mine->hash = h;
                mine->value = value;
                mine->len = len;
                memcpy(mine->key, key, len);
                mine->key[len] = '\0';
            }
            if (atomic_compare_exchange_strong_explicit(&t->slots[s], &e, mine,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                if (slot)
                    *slot = s;
                return mine;
            }
            /* Lost the slot: e is the winner's entry, maybe the same key. */
        }
        if (same(e, h, key, len)) {
            if (mine) {
                free(mine);
                atomic_fetch_sub(&t->count, 1);
            }
            if (slot)
                *slot = s;
            return e;
        }
    }
    if (mine) {
        free(mine);
        atomic_fetch_sub(&t->count, 1);
    }
    return NULL;
}

const struct vs_strtab_entry *vs_strtab_at(const struct vs_strtab *t, size_t slot)
{
    if (slot >= t->cap)
        return NULL;
    return atomic_load_explicit(&t->slots[slot], memory_order_acquire);
}
