/* The arena validator finds what it claims to check: each test breaks one invariant by hand
 * (through the allocator's internals) and expects the validator to name it, then repairs it. */
#include "arena_fixture.h"

#include "allocator/internal.h"

static struct vs_arena *a;
static CUdeviceptr small_obj, large_blk;

static void setup(void)
{
    arena_fixture_start(256 * MiB);
    a = arena_new(SIZE_MAX);
    cr_assert_eq(vs_arena_alloc(a, 4000, &small_obj), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_alloc(a, 5 * MiB, &large_blk), CUDA_SUCCESS);
    fx_validate(a, "set-up");
}

static void expect_broken(const char *needle)
{
    char why[512];
    const char *bad = vs_arena_validate(a, why, sizeof why);
    cr_assert_not_null(bad, "the validator missed a broken invariant (%s)", needle);
    cr_assert(strstr(bad, needle), "expected a report about %s, got: %s", needle, bad);
}

Test(arena_validate, mapped_free_accounting, .init = setup)
{
    a->mapped_free++;
    expect_broken("mapped_free");
    a->mapped_free--;
    fx_destroy(a);
}

Test(arena_validate, pending_bytes, .init = setup)
{
    atomic_fetch_add(&a->pending, 512);
    expect_broken("pending is");
    atomic_fetch_sub(&a->pending, 512);
    fx_destroy(a);
}

Test(arena_validate, granule_busy_count, .init = setup)
{
    struct vs_reservation *r = vs_va_find(a, large_blk);
    r->slots[vs_slot_of(a, r, large_blk)].busy++;
    expect_broken("busy");
    r->slots[vs_slot_of(a, r, large_blk)].busy--;
    fx_destroy(a);
}

Test(arena_validate, live_object_on_a_free_list, .init = setup)
{
    struct vs_class *c = &a->classes[vs_small_class(4000)];
    cr_assert_eq(vs_vec_push(&c->idle, small_obj), 0);
    expect_broken("which is live");
    c->idle.n--;
    fx_destroy(a);
}

Test(arena_validate, object_listed_twice, .init = setup)
{
    cr_assert_eq(vs_arena_free(a, small_obj), CUDA_SUCCESS); /* onto the sync list */
    cr_assert_eq(vs_vec_push(&a->classes[vs_small_class(4000)].idle, small_obj), 0);
    expect_broken("listed twice");
    a->classes[vs_small_class(4000)].idle.n--;
    fx_destroy(a);
}

Test(arena_validate, live_bytes, .init = setup)
{
    atomic_fetch_add(&a->live, 1);
    expect_broken("live is");
    atomic_fetch_sub(&a->live, 1);
    fx_destroy(a);
}

Test(arena_validate, block_tiling, .init = setup)
{
    struct vs_block *b = vs_large_find(a, large_blk);
    b->size += VS_ALIGN;
    expect_broken("tile");
    b->size -= VS_ALIGN;
    fx_destroy(a);
}

Test(arena_validate, block_listed_twice_on_a_stream, .init = setup)
{
    CUstream s = fx_stream();
    cr_assert_eq(vs_arena_free_async(a, large_blk, s), CUDA_SUCCESS); /* listed on s */
    struct vs_stream *st = vs_stream_get(a, s);
    struct vs_block *b = vs_large_find(a, large_blk);
    cr_assert_eq(st->large.n, 1);
    cr_assert(vs_stream_list(st, -1, (uintptr_t)b, b->size)); /* counters agree: only twice */
    expect_broken("listed twice");
    st->large.n--;
    st->pending_bytes -= b->size;
    st->listed--;
    fx_destroy(a);
}
