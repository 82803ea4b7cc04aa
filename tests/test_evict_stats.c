/* Eviction accounting: live and demoted bytes per stage and per tag as the status JSON reports
 * them, the counters, and the demote/promote trace events. */
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

static json_int_t field(json_t *usage, const char *group, const char *name, const char *key)
{
    json_t *v = json_object_get(json_object_get(json_object_get(usage, group), name), key);
    cr_assert(json_is_integer(v), "no %s.%s.%s", group, name, key);
    return json_integer_value(v);
}

Test(evict_stats, usage_per_stage_and_tag)
{
    set_up();
    cr_assert_eq(vs_arena_demote(a, ef_name("A"), NULL), CUDA_SUCCESS);
    cr_assert_eq(vs_arena_demote(a, ef_name("t1"), NULL), CUDA_SUCCESS);
    json_t *u = vs_arena_usage_json(a);
    cr_assert(u);
    cr_assert_str_eq(json_string_value(json_object_get(u, "eviction")), "on");
    cr_assert_eq(field(u, "stages", "A", "live_bytes"), 8 * MiB);
    cr_assert_eq(field(u, "stages", "A", "demoted_bytes"), 8 * MiB);
    cr_assert_eq(field(u, "stages", "B", "live_bytes"), 8 * MiB);
    cr_assert_eq(field(u, "stages", "B", "demoted_bytes"), 4 * MiB);
    cr_assert_eq(field(u, "tags", "t1", "demoted_bytes"), 4 * MiB);
    cr_assert_eq(field(u, "tags", "", "live_bytes"), 12 * MiB);
    cr_assert_eq(field(u, "tags", "", "demoted_bytes"), 8 * MiB);
    cr_assert_eq(json_integer_value(json_object_get(u, "demoted_bytes")), 12 * MiB);
    cr_assert_eq(json_integer_value(json_object_get(u, "host_bytes")), 12 * MiB);
    cr_assert_eq(json_integer_value(json_object_get(u, "demotes")), 6);
    cr_assert_eq(json_integer_value(json_object_get(u, "live_bytes")), 16 * MiB);
    /* the freed device granules are cached, free for any request */
    cr_assert_geq(json_integer_value(json_object_get(u, "cached_bytes")), 12 * MiB);
    json_decref(u);

    cr_assert_eq(vs_arena_promote(a, ef_name("B"), NULL), CUDA_SUCCESS);
    u = vs_arena_usage_json(a);
    cr_assert_eq(field(u, "stages", "B", "demoted_bytes"), 0);
    cr_assert_eq(field(u, "stages", "A", "demoted_bytes"), 8 * MiB);
    cr_assert_eq(json_integer_value(json_object_get(u, "promotes")), 2);
    json_decref(u);
    ef_forget(blk, 4);
    fx_destroy(a);
}

Test(evict_stats, unprobed_until_first_demote)
{
    set_up();
    json_t *u = vs_arena_usage_json(a);
    cr_assert_str_eq(json_string_value(json_object_get(u, "eviction")), "unprobed");
    cr_assert_eq(json_integer_value(json_object_get(u, "demoted_bytes")), 0);
    json_decref(u);
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
