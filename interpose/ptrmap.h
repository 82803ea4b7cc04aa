/* A map from 64-bit keys (device pointers, VMM handles) to 64-bit values (sizes).
 *
 * Invariants: keys are never 0 (0 marks an empty slot); open addressing with linear probing and
 * backward-shift deletion (no tombstones), at most half full. A zero-initialised struct is an
 * empty map. Not synchronised: the caller holds its own lock.
 */
#ifndef VS_INTERPOSE_PTRMAP_H
#define VS_INTERPOSE_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_ptrmap_slot {
    uint64_t key, val;
};

struct vs_ptrmap {
    size_t cap; /* power of two, or 0 before the first insertion */
    size_t used;
    struct vs_ptrmap_slot *slots;
};

/* Inserts or replaces; *old gets the replaced value (0 if none). False only when memory for
 * growing the table cannot be had. */
bool vs_ptrmap_put(struct vs_ptrmap *m, uint64_t key, uint64_t val, uint64_t *old);

/* Removes key, storing its value in *val. False when the key is absent. */
bool vs_ptrmap_take(struct vs_ptrmap *m, uint64_t key, uint64_t *val);

#endif
