/* The layers of docs/architecture.md ("Layers") depend on each other in one direction only: each
 * quoted #include of a source file must name a header of its own layer or of a layer below it,
 * and JSON stays out of allocator/ and policy/. Reads the sources under VS_SOURCE_DIR; a
 * forbidden include fails naming file, line and header. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Directory -> the header directories it may include (its own first). "" is include/. */
static const struct layer {
    const char *dir;
    const char *may[6];
} layers[] = {
    {"common", {"common"}},
    {"policy", {"policy", "common"}},
    {"allocator", {"allocator", "policy", "common"}},
    {"interpose", {"interpose", "allocator", "policy", "common", ""}},
    {"kernels", {"kernels", "common"}},
    {"kernels/cpu", {"kernels", "common"}},
    {"kernels/cuda", {"kernels", "common"}},
    {"vae", {"vae", "kernels", "common", ""}},
    {"tools/simcuda", {"tools/simcuda"}},
};

/* The layer a header belongs to: its directory, with kernels/cpu and kernels/cuda in kernels;
 * a bare name is a header of the including file's own directory, or of include/. */
static void layer_of(const char *dir, const char *hdr, char *out, size_t n)
{
    const char *slash = strrchr(hdr, '/');
    if (!slash) {
        char path[1024];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s/%s", VS_SOURCE_DIR, dir, hdr);
        snprintf(out, n, "%s", stat(path, &sb) == 0 ? dir : "");
    } else {
        snprintf(out, n, "%.*s", (int)(slash - hdr), hdr);
    }
    if (!strncmp(out, "kernels/", 8))
        out[7] = '\0';
}

static bool allowed(const struct layer *l, const char *layer)
{
    if (!strcmp(layer, l->dir))
        return true;
    for (size_t i = 0; i < sizeof l->may / sizeof *l->may && l->may[i]; i++)
        if (!strcmp(layer, l->may[i]))
            return true;
    return false;
}

/* JSON stays at the edges (status, control socket, CLI): the allocator and the policy layer hand
 * out plain structs and never include jansson. */
static bool may_use_json(const char *dir)
{
    return strcmp(dir, "allocator") != 0 && strcmp(dir, "policy") != 0;
}

static bool is_source(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcmp(dot, ".c") || !strcmp(dot, ".h") || !strcmp(dot, ".cu") ||
                   !strcmp(dot, ".cuh"));
}

/* Number of forbidden includes in the layer's directory; each is reported. */
static int check_layer(const struct layer *l, int *files)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", VS_SOURCE_DIR, l->dir);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot open %s", path);
    int bad = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_source(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s/%s", VS_SOURCE_DIR, l->dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        (*files)++;
        char line[1024], hdr[512], layer[512];
        for (int no = 1; fgets(line, sizeof line, f); no++) {
            if (!may_use_json(l->dir) && sscanf(line, " # include <%511[^>]>", hdr) == 1 &&
                !strcmp(hdr, "jansson.h")) {
                cr_log_error("%s/%s:%d includes <jansson.h>: %s/ hands out plain structs",
                             l->dir, e->d_name, no, l->dir);
                bad++;
            }
            if (sscanf(line, " # include \"%511[^\"]\"", hdr) != 1)
                continue;
            layer_of(l->dir, hdr, layer, sizeof layer);
            if (!allowed(l, layer)) {
                cr_log_error("%s/%s:%d includes \"%s\" (layer %s/), which %s/ may not use",
                             l->dir, e->d_name, no, hdr, *layer ? layer : "include", l->dir);
                bad++;
            }
        }
        fclose(f);
    }
    closedir(d);
    return bad;
}

Test(layers, includes_follow_the_dependency_direction)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof layers / sizeof *layers; i++) {
        int files = 0;
        bad += check_layer(&layers[i], &files);
        cr_expect_gt(files, 0, "no sources read in %s/", layers[i].dir);
    }
    cr_assert_eq(bad, 0, "%d forbidden includes (see docs/architecture.md, \"Layers\")", bad);
}

/* Names say their layer (docs/architecture.md, "Names"): no type and no external function or
 * variable of the same name is defined in two layers. Types: the struct/enum/union definitions
 * of each layer's headers; functions and variables: the defined globals of each layer's archive. */
struct name {
    char name[128], where[384];
};

static int add_name(struct name **v, size_t *n, size_t *cap, const char *nm, const char *layer,
                    const char *where)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*v)[i].name, nm) != 0)
            continue;
        size_t len = strlen(layer);
        if (strncmp((*v)[i].where, layer, len) == 0 && (*v)[i].where[len] == ' ')
            return 0; /* the same layer */
        cr_log_error("%s is defined in two layers: %s and %s %s", nm, (*v)[i].where, layer, where);
        return 1;
    }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        *v = realloc(*v, *cap * sizeof **v);
        cr_assert_not_null(*v);
    }
    snprintf((*v)[*n].name, sizeof (*v)[*n].name, "%s", nm);
    snprintf((*v)[*n].where, sizeof (*v)[*n].where, "%s %s", layer, where);
    (*n)++;
    return 0;
}

static const struct {
    const char *layer, *dir;
} type_dirs[] = {
    {"common", "common"},      {"policy", "policy"},         {"allocator", "allocator"},
    {"interpose", "interpose"}, {"kernels", "kernels"},      {"kernels", "kernels/cpu"},
    {"kernels", "kernels/cuda"}, {"vae", "vae"},             {"tools", "tools/cli"},
    {"tools", "tools/trace"},   {"tools", "tools/workloads"},
};

static int scan_types(const char *layer, const char *dir, struct name **v, size_t *n, size_t *cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", VS_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int bad = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (strcmp(dot, ".h") != 0 && strcmp(dot, ".cuh") != 0))
            continue;
        snprintf(path, sizeof path, "%s/%s/%s", VS_SOURCE_DIR, dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        char line[1024], kind[16], nm[128], where[320];
        for (int no = 1; fgets(line, sizeof line, f); no++) {
            const char *s = strncmp(line, "typedef ", 8) == 0 ? line + 8 : line;
            if (sscanf(s, "%15[a-z] %127[A-Za-z0-9_] {", kind, nm) != 2 || !strchr(s, '{') ||
                (strcmp(kind, "struct") && strcmp(kind, "enum") && strcmp(kind, "union")))
                continue;
            snprintf(where, sizeof where, "(%s/%s:%d)", dir, e->d_name, no);
            bad += add_name(v, n, cap, nm, layer, where);
        }
        fclose(f);
    }
    closedir(d);
    return bad;
}

Test(layers, no_name_is_defined_in_two_layers)
{
    struct name *v = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    for (size_t i = 0; i < sizeof type_dirs / sizeof *type_dirs; i++)
        bad += scan_types(type_dirs[i].layer, type_dirs[i].dir, &v, &n, &cap);
    size_t types = n;
    static const struct {
        const char *layer, *archive;
    } archives[] = {{"policy", "libvs_policy.a"}, {"allocator", "libvs_alloc.a"},
                    {"interpose", "libvs_shim.a"}, {"kernels", "libvs_kernels.a"},
                    {"tools", "libvs_cli.a"}};
    for (size_t i = 0; i < sizeof archives / sizeof *archives; i++) {
        char cmd[1200], line[512], type[8], sym[256];
        snprintf(cmd, sizeof cmd, "nm -g --defined-only '%s/%s'", VS_BUILD_DIR,
                 archives[i].archive);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p, "cannot run %s", cmd);
        size_t before = n;
        while (fgets(line, sizeof line, p))
            if (sscanf(line, "%*s %7s %255s", type, sym) == 2)
                bad += add_name(&v, &n, &cap, sym, archives[i].layer, archives[i].archive);
        cr_assert_eq(pclose(p), 0, "%s failed", cmd);
        cr_expect_gt(n, before, "no symbols read from %s", archives[i].archive);
    }
    cr_expect_gt(types, 50, "only %zu type definitions read", types);
    free(v);
    cr_assert_eq(bad, 0, "%d names defined in two layers (docs/architecture.md, \"Names\")", bad);
}
