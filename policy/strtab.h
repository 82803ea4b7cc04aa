/* An insert-only, lock-free hash table of strings with a fixed number of slots.
 *
 * Invariants: an entry, once published in a slot (compare-and-swap), never moves, changes or
 * goes away until vs_strtab_destroy(); so a reader holding a pointer or a slot index needs no
 * lock, and a fork in the middle of an insert leaves nothing locked. At most `max` entries are
 * held (max < slots keeps probe sequences short); inserting beyond that fails. */
#ifndef VS_POLICY_STRTAB_H
#define VS_POLICY_STRTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct vs_strtab_entry {
    uint64_t hash;
    uint64_t value; /* set before publication, immutable after */
    size_t len;
    char key[];     /* len bytes and a NUL */
};

struct vs_strtab {
    _Atomic(struct vs_strtab_entry *) *slots;
    size_t cap; /* power of two */
    size_t max;
    atomic_size_t count;
};

/* cap is rounded up to a power of two. Returns 0, or -1 when out of memory. */
int vs_strtab_init(struct vs_strtab *t, size_t cap, size_t max);
void vs_strtab_destroy(struct vs_strtab *t);

/* The entry for key (len bytes), or NULL; *slot receives its slot when found (slot may be NULL). */
const struct vs_strtab_entry *vs_strtab_find(const struct vs_strtab *t, const char *key,
                                             size_t len, size_t *slot);

/* The entry for key, inserted with `value` when absent (a concurrent insert of the same key
 * returns one entry to both). NULL when the table is full or memory runs out. */
const struct vs_strtab_entry *vs_strtab_insert(struct vs_strtab *t, const char *key, size_t len,
                                               uint64_t value, size_t *slot);

/* The entry in a slot, NULL when empty or out of range. */
const struct vs_strtab_entry *vs_strtab_at(const struct vs_strtab *t, size_t slot);

#endif
