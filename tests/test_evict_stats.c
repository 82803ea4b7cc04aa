/* Eviction accounting: live and demoted bytes per stage and per tag as the status JSON reports
 * them (struct vs_arena_usage), the counters, and the demote/promote trace events. */
#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#include "allocator/trace.h"
#include "evict_fixture.h"

static struct vs_arena *a;
static struct ef_block blk[4]; /* A, A, B, B (the last tagged t1), 4 MiB each */

static void set_up(void)
{
    arena_fixture_start(256 * MiB);
    ef_name("_");
    vs_evict_configure(NULL, ef_names);
    a = arena_new(SIZE_MAX);
    uint64_t seed = 2;
    for (int i = 0; i < 4; i++) {
        vs_arena_set_stage(a, ef_name(i < 2 ? "A" : "B"));
        ef_alloc(a, &blk[i], 4 * MiB, &seed);
    }
    cr_assert_eq(vs_arena_set_tag(a, blk[3].p, ef_name("t1")), CUDA_SUCCESS);
}

/* The entry of `name` ("" for none) in a usage table. */
static const struct vs_name_usage *entry(const struct vs_usage_table *t, const char *name)
{
    uint32_t id = *name ? ef_name(name) : 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].id == id)
            return &t->v[i];
    cr_assert_fail("no entry for \"%s\"", name);
    return NULL;
}

Test(evict_stats, usage_per_stage_and_tag)
{
    set_up();
    struct vs_arena_usage u;
    cr_assert(vs_arena_usage(a, &u));
    size_t cached_before = u.arena.cached_bytes;
    vs_arena_usage_free(&u);
    cr_assert_eq(vs_arena_demote(a, ef_name("A"), NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_demote(a, ef_name("t1"), NULL), CUDA_SUCCESS);
    cr_assert(vs_arena_usage(a, &u));
    cr_assert_eq(u.evict.state, VS_EVICT_ON);
    cr_assert_eq(entry(&u.stages, "A")->live_bytes, 8 * MiB);
    cr_assert_eq(entry(&u.stages, "A")->demoted_bytes, 8 * MiB);
    cr_assert_eq(entry(&u.stages, "B")->live_bytes, 8 * MiB);
    cr_assert_eq(entry(&u.stages, "B")->demoted_bytes, 4 * MiB);
    cr_assert_eq(entry(&u.tags, "t1")->demoted_bytes, 4 * MiB);
    cr_assert_eq(entry(&u.tags, "")->live_bytes, 12 * MiB);
    cr_assert_eq(entry(&u.tags, "")->demoted_bytes, 8 * MiB);
    cr_assert_eq(u.demoted_bytes, 12 * MiB);
    cr_assert_eq(u.evict.host_bytes, 12 * MiB);
    cr_assert_eq(u.evict.demotes, 6);
    cr_assert_eq(u.arena.live_bytes, 16 * MiB);
    /* requested demotes gave the device granules they freed back to the driver */
    cr_assert_eq(u.arena.cached_bytes, cached_before);
    vs_arena_usage_free(&u);

    cr_assert_eq(vs_arena_promote(a, ef_name("B"), NULL), CUDA_SUCCESS);
    cr_assert(vs_arena_usage(a, &u));
    cr_assert_eq(entry(&u.stages, "B")->demoted_bytes, 0);
    cr_assert_eq(entry(&u.stages, "A")->demoted_bytes, 8 * MiB);
    cr_assert_eq(u.evict.promotes, 2);
    vs_arena_usage_free(&u);
    ef_forget(blk, 4);
    fx_destroy(a);
}

Test(evict_stats, unprobed_until_first_demote)
{
    set_up();
    struct vs_arena_usage u;
    cr_assert(vs_arena_usage(a, &u));
    cr_assert_eq(u.evict.state, VS_EVICT_UNPROBED);
    cr_assert_eq(u.demoted_bytes, 0);
    vs_arena_usage_free(&u);
    ef_forget(blk, 4);
    fx_destroy(a);
}

/* One event per block moved, with its address, size, stage and tag. */
Test(evict_stats, trace_events)
{
    char path[] = "/tmp/vs_evict_traceXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    set_up();
    vs_trace_configure(path, false, &fx_drv);
    cr_assert_eq(vs_arena_demote(a, ef_name("B"), NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_promote(a, ef_name("t1"), NULL), CUDA_SUCCESS);
    vs_trace_shutdown();
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[1024];
    int demotes = 0, promotes = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *ev = json_loads(line, 0, NULL);
        cr_assert(ev, "bad trace line %s", line);
        const char *kind = json_string_value(json_object_get(ev, "ev"));
        if (kind && (!strcmp(kind, "demote") || !strcmp(kind, "promote"))) {
            bool down = !strcmp(kind, "demote");
            struct ef_block *b = &blk[down ? 2 + demotes : 3];
            char ptr[32];
            snprintf(ptr, sizeof ptr, "0x%llx", (unsigned long long)b->p);
            cr_assert_str_eq(json_string_value(json_object_get(ev, "ptr")), ptr);
            cr_assert_eq(json_integer_value(json_object_get(ev, "size")), 4 * MiB);
            cr_assert_str_eq(json_string_value(json_object_get(ev, "stage")), "B");
            cr_assert_str_eq(json_string_value(json_object_get(ev, "tag")),
                             b == &blk[3] ? "t1" : "");
            cr_assert_str_eq(json_string_value(json_object_get(ev, "api")),
                             down ? "vramshim_demote" : "vramshim_promote");
            demotes += down;
            promotes += !down;
        }
        json_decref(ev);
    }
    fclose(f);
    unlink(path);
    cr_assert_eq(demotes, 2);
    cr_assert_eq(promotes, 1);
    ef_forget(blk, 4);
    fx_destroy(a);
}
