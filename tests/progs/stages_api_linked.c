/* Drives the public C API (include/vramshim.h) through dlsym(RTLD_DEFAULT), good and bad calls,
 * with allocations in two stages. Prints "rc NAME VALUE" per call and "stats JSON" lines; the
 * test (tests/test_stages_api.c) checks them against the header's documented codes and the
 * trace. */
#include <stdint.h>
#include <string.h>

#include "stages_prog.h"

#define MiB (1024u * 1024u)
#define RC(name, call) printf("rc %s %d\n", name, (call))

int main(void)
{
    vs_api_lookup();
    /* Before any CUDA call, bad names first. */
    RC("begin_null", vs_api.stage_begin(NULL));
    RC("begin_space", vs_api.stage_begin("two words"));
    RC("begin_long", vs_api.stage_begin("a_name_that_is_longer_than_forty_characters"));
    RC("begin_load", vs_api.stage_begin("load"));

    vs_prog_context();
    CUdeviceptr a, b;
    CK(cuMemAlloc(&a, 4 * MiB));
    RC("tag_a", vs_api.tag(a, "weights"));
    RC("tag_inside", vs_api.tag(a + 4096, "weights"));
    RC("tag_garbage", vs_api.tag((CUdeviceptr)0xdeadbeef, "weights"));
    RC("tag_null", vs_api.tag(a, NULL));
    RC("begin_decode", vs_api.stage_begin("decode"));
    CK(cuMemAlloc(&b, 1 * MiB));
    vs_print_stats();
    RC("end_mismatch", vs_api.stage_end("load"));
    RC("end_unknown", vs_api.stage_end("nope"));
    RC("end_null", vs_api.stage_end(NULL));
    RC("end_decode", vs_api.stage_end("decode"));
    RC("end_load", vs_api.stage_end("load"));
    RC("end_again", vs_api.stage_end("load"));

    char small[4];
    int need = vs_api.stats_json(small, sizeof small);
    printf("rc stats_small_ok %d\n", need > (int)sizeof small && strlen(small) == sizeof small - 1);
    RC("stats_nullbuf", vs_api.stats_json(NULL, 10));
    RC("demote_unknown", vs_api.demote("never_used"));
    RC("demote_null", vs_api.demote(NULL));
    RC("promote_bad", vs_api.promote("bad name"));
    char stage[8];
    RC("match_nopolicy", vs_api.match_function("m", "VAE.decode", stage, sizeof stage));
    RC("match_null", vs_api.match_function("m", NULL, stage, sizeof stage));
    RC("demote_load", vs_api.demote("load"));
    vs_print_stats();
    CK(cuMemFree(a));
    CK(cuMemFree(b));
    return 0;
}
