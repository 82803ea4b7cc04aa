/* What went through the hooks: calls per family, live bytes and their peak.
 *
 * Live bytes are device allocations made through the alloc hooks that were not freed yet, plus
 * physical memory the application created itself with cuMemCreate and did not release yet
 * (mapping adds no memory). Sizes of the driver's blocks and of handles are remembered per
 * pointer / handle, because frees name only the pointer; an arena knows its blocks' sizes and
 * gives them back with the free, so its blocks are counted without a map. Call counts are per
 * thread; the size maps and the live bytes of their entries share one spin lock, the arenas'
 * blocks are counted without it (tally.c says how).
 */
#ifndef VS_INTERPOSE_TALLY_H
#define VS_INTERPOSE_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interpose/hooks.h"

void vs_tally_call(enum vs_family family);

/* A device allocation of `size` bytes that the driver served now lives at ptr. */
void vs_tally_alloc(uint64_t ptr, uint64_t size);
/* ptr is being freed: true with its size when the driver served it through the hooks. */
bool vs_tally_free(uint64_t ptr, uint64_t *size);
/* An arena served a block of `size` bytes / took one back. */
void vs_tally_arena_alloc(uint64_t size);
void vs_tally_arena_free(uint64_t size);

void vs_tally_create(uint64_t handle, uint64_t size);
bool vs_tally_release(uint64_t handle, uint64_t *size);

/* Calls of one family so far, failed ones included. */
uint64_t vs_tally_calls(enum vs_family family);

/* "calls: alloc=N free=N ...; peak live N bytes (X MiB), live at exit N bytes". */
void vs_tally_summary(char *buf, size_t len);

void vs_tally_fork_prepare(void);
void vs_tally_fork_release(void);

#endif
