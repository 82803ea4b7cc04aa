/* Shared by the eviction tests: the arena fixture plus a name registry, policies from text,
 * blocks filled with random bytes whose expected contents are kept in host memory. */
#ifndef EVICT_FIXTURE_H
#define EVICT_FIXTURE_H

#include "arena_fixture.h"

#include "allocator/evict.h"
#include "policy/policy.h"

static struct vs_names *ef_names;

static inline uint32_t ef_name(const char *name)
{
    if (!ef_names)
        ef_names = vs_names_create();
    uint32_t id = vs_names_intern(ef_names, name);
    cr_assert_neq(id, 0u, "cannot intern %s", name);
    return id;
}

/* Loads a policy from text (warnings allowed) and gives it to the arena's eviction rules. */
static inline struct vs_policy *ef_policy(const char *text)
{
    ef_name("_");
    struct vs_policy_diags diags = {0};
    struct vs_policy *p = vs_policy_parse(text, strlen(text), "t.ini", ef_names, &diags);
    cr_assert(p, "policy did not load: %s", diags.n ? diags.v[0].text : "?");
    vs_policy_diags_free(&diags);
    vs_evict_configure(p, ef_names);
    return p;
}

struct ef_block {
    CUdeviceptr p;
    size_t n;
    unsigned char *want;
};

static inline uint64_t ef_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Allocates n bytes and fills them with random bytes (kept in b->want). */
static inline void ef_alloc(struct vs_arena *a, struct ef_block *b, size_t n, uint64_t *seed)
{
    b->n = n;
    cr_assert_eq(vs_arena_alloc(a, n, &b->p), CUDA_SUCCESS, "alloc of %zu bytes", n);
    b->want = malloc(n);
    cr_assert(b->want);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = ef_rand(seed);
        memcpy(b->want + i, &r, n - i < 8 ? n - i : 8);
    }
    memcpy((void *)(uintptr_t)b->p, b->want, n);
}

static inline bool ef_intact(const struct ef_block *b)
{
    return memcmp((const void *)(uintptr_t)b->p, b->want, b->n) == 0;
}

static inline void ef_free(struct vs_arena *a, struct ef_block *b)
{
    cr_assert_eq(vs_arena_free(a, b->p), CUDA_SUCCESS);
    free(b->want);
    b->want = NULL;
}

/* Forgets the expected contents of blocks that go with their arena. */
static inline void ef_forget(struct ef_block *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].want);
        b[i].want = NULL;
    }
}

/* What a request can get now: device free + the arena's free granules. */
static inline size_t ef_free_bytes(struct vs_arena *a)
{
    size_t f, t;
    cr_assert_eq(vs_arena_mem_get_info(a, &f, &t), CUDA_SUCCESS);
    return f;
}

#endif
