/* Crafted latents and weight files, as a hostile download would be: shapes whose element count
 * overflows, a header that ends after a key, header and data lengths beyond the file's end, and
 * dimensions too large for the decoder. Each gets a precise error naming the file; none crashes,
 * writes out of bounds or allocates what the file cannot hold. */
#include <sys/stat.h>

#include "kernels/array_io.h"
#include "kernels/safetensors.h"
#include "replay_fixture.h"

#define GOLDEN VS_SOURCE_DIR "/tests/golden/"

static char npy[64], st[64];

static void fresh_paths(void)
{
    strcpy(npy, "/tmp/vs_hostile_XXXXXX.npy");
    strcpy(st, "/tmp/vs_hostile_XXXXXX.safetensors");
    int a = mkstemps(npy, 4), b = mkstemps(st, 12);
    cr_assert(a >= 0 && b >= 0);
    close(a);
    close(b);
}

static void cleanup(void)
{
    unlink(npy);
    unlink(st);
    fx_cleanup();
}

TestSuite(hostile_files, .init = fresh_paths, .fini = cleanup);

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A version 1 .npy with header dict `dict` (padded to a 16-byte multiple with '\n' last) and
 * `data_len` bytes of data. */
static void write_npy(const char *dict, size_t data_len)
{
    size_t dl = strlen(dict), hlen = (10 + dl + 1 + 15) / 16 * 16 - 10;
    unsigned char *b = calloc(10 + hlen + data_len, 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hlen & 0xff);
    b[9] = (unsigned char)(hlen >> 8);
    memset(b + 10, ' ', hlen);
    memcpy(b + 10, dict, dl);
    b[10 + hlen - 1] = '\n';
    write_bytes(npy, b, 10 + hlen + data_len);
    free(b);
}

/* A safetensors file with header JSON `json` and `data_len` bytes of data. */
static void write_st(const char *json, size_t data_len)
{
    size_t hl = strlen(json);
    unsigned char *b = calloc(8 + hl + data_len, 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    write_bytes(st, b, 8 + hl + data_len);
    free(b);
}

static void load_fails_with(const char *path, const char *expected)
{
    struct vs_array a;
    struct vs_err err;
    cr_assert_eq(vs_array_load(path, &a, &err), -1, "loading should fail with: %s", expected);
    cr_assert(strstr(err.msg, expected), "message\n  %s\nlacks\n  %s", err.msg, expected);
    cr_assert(strstr(err.msg, path), "message names no file: %s", err.msg);
    cr_assert_null(a.data);
}

/* 3 * 3074457345618258603 = 2^63 + 1: times 2 bytes it wraps to 2 and passed the size check. */
Test(hostile_files, npy_shape_whose_byte_size_overflows)
{
    write_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 3074457345618258603), }", 2);
    load_fails_with(npy, "too large");
    write_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2147483647, 2147483647, "
              "2147483647), }", 2);
    load_fails_with(npy, "shape [2147483647, 2147483647, 2147483647] is too large");
}

Test(hostile_files, npy_dimension_beyond_the_decoders_range)
{
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296), }", 0);
    load_fails_with(npy, "dimension 2 is 4294967296, too large");
}

Test(hostile_files, safetensors_shape_whose_byte_size_overflows)
{
    write_st("{\"latents\": {\"dtype\": \"F16\", \"shape\": [3, 3074457345618258603], "
             "\"data_offsets\": [0, 2]}}", 2);
    load_fails_with(st, "too large");
    write_st("{\"latents\": {\"dtype\": \"BF16\", \"shape\": [3, 3074457345618258603], "
             "\"data_offsets\": [0, 2]}}", 2);
    load_fails_with(st, "too large");
}

/* A zero extent makes the element count 0 and must not let the other extent through. */
Test(hostile_files, safetensors_zero_extent_does_not_hide_a_huge_one)
{
    write_st("{\"latents\": {\"dtype\": \"F32\", \"shape\": [0, 4, 8589934592, 8589934592], "
             "\"data_offsets\": [0, 0]}}", 0);
    load_fails_with(st, "too large");
}

Test(hostile_files, npy_fortran_order_without_a_value)
{
    write_npy("{'descr': '<f4', 'shape': (1,), 'fortran_order'}", 4);
    load_fails_with(npy, "'fortran_order' has no value");
}

/* A 12-byte file claiming a 4 GiB header: refused from the file's size, before any allocation. */
Test(hostile_files, npy_header_longer_than_the_file)
{
    write_bytes(npy, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    load_fails_with(npy, "truncated file: header length 4294967295 but the file holds 12 bytes");
}

Test(hostile_files, npy_data_longer_than_the_file)
{
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", 8);
    load_fails_with(npy, "shape [1000000000] needs 4000000000 bytes of data but the file holds 8 "
                         "after the header");
}

/* `vramshim decode` of latents with the small test decoder. */
static struct fx_run decode(const char *latents)
{
    return fx_cli("decode --vae " GOLDEN "sd_small.vae.safetensors --unscaled --latents %s "
                  "-o %s/never.png", latents, fx_tmpdir());
}

/* An empty batch of 1048577 x 2147483647 latents: the sizes are printed whole, not as int. */
Test(hostile_files, huge_latent_dimensions_are_printed_whole)
{
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4, 1048577, 2147483647), }",
              0);
    struct fx_run r = decode(npy);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(strstr(r.err, "latent height 1048577 and width 2147483647"), "%s", r.err);
    cr_expect_null(strstr(r.err, "-1048575"), "%s", r.err);
    fx_run_free(&r);
}

Test(hostile_files, empty_latent_batch_is_named)
{
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4, 8, 8), }", 0);
    struct fx_run r = decode(npy);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(strstr(r.err, "batch of 0 latents: nothing to decode"), "%s", r.err);
    fx_run_free(&r);
}

/* Tile sizes and thread counts are whole numbers in range, not atoi's wrap-around. */
Test(hostile_files, tile_and_thread_counts_are_range_checked)
{
    static const char *const tiles[] = {"2147483647", "99999999999999", "16px", "-8"};
    for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
        struct fx_run r = fx_cli("decode --tile %s --vae " GOLDEN "sd_small.vae.safetensors "
                                 "--latents " GOLDEN "sd_small.io.safetensors -o %s/never.png",
                                 tiles[i], fx_tmpdir());
        char want[160];
        snprintf(want, sizeof want, "decode: --tile '%s' is neither 'auto' nor a pixel count "
                 "from 1 to 524288\n", tiles[i]);
        cr_expect_eq(r.status, 2, "%s", r.err);
        cr_expect_str_eq(r.err, want);
        fx_run_free(&r);
    }
    struct fx_run r = fx_cli("decode --threads 99999999999 --vae a --latents b -o c");
    cr_expect_eq(r.status, 2, "%s", r.err);
    cr_expect_str_eq(r.err, "decode: --threads '99999999999' is not a positive number\n");
    fx_run_free(&r);
}

/* A FIFO as latents or weights is refused at once instead of waiting for a writer. */
Test(hostile_files, fifos_are_refused_without_blocking, .timeout = 30)
{
    char *fifo = fx_path("latents.npy");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    load_fails_with(fifo, ": not a regular file");
    free(fifo);
    fifo = fx_path("latents.safetensors");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    load_fails_with(fifo, ": not a regular file");
    free(fifo);
}
