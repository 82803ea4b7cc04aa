/* A good guest: the preloaded shim brings nothing into its host but its hooks. It exports only
 * its hooks and public API, loads no library the host did not ask for, and leaves the host's C++
 * exceptions to the host's unwinder (libgcc_s), however late libstdc++ is loaded.
 */
#include <ctype.h>

#include "interpose_harness.h"

#define MAX_NAMES 256

struct names {
    char *v[MAX_NAMES];
    size_t n;
};

static void add(struct names *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == len && strncmp(s->v[i], name, len) == 0)
            return;
    cr_assert(s->n < MAX_NAMES);
    s->v[s->n++] = strndup(name, len);
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

static bool has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return true;
    return false;
}

/* Every identifier that follows `marker` in the file (up to the next non-identifier byte). */
static void scan(struct names *s, const char *path, const char *marker, bool keep_marker)
{
    char *text = vs_slurp(path);
    cr_assert(text, "cannot read %s", path);
    for (char *p = text; (p = strstr(p, marker)); p += strlen(marker)) {
        const char *start = keep_marker ? p : p + strlen(marker);
        const char *end = p + strlen(marker);
        while (isalnum((unsigned char)*end) || *end == '_')
            end++;
        if (*end == '(' && end > start)
            add(s, start, (size_t)(end - start));
    }
    free(text);
}

/* Lines of a command's output. */
static char *command_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run %s", cmd);
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, p)) > 0)
        if ((n += k) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    cr_assert(buf);
    buf[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    return buf;
}

Test(guest_footprint, exports_exactly_the_hooks_and_the_public_api)
{
    struct names expected = {0}, exported = {0};
    add(&expected, "dlsym", 5);
    const char *hook_files[] = {"hooks_alloc.c", "hooks_vmm.c", "hooks_sync.c", "hooks_query.c",
                                "procaddr.c"};
    for (size_t i = 0; i < sizeof hook_files / sizeof *hook_files; i++) {
        char path[512];
        snprintf(path, sizeof path, VS_SOURCE_DIR "/interpose/%s", hook_files[i]);
        /* VS_EXPORT_HOOK(name) defines the exported symbol `name` */
        char *text = vs_slurp(path);
        cr_assert(text, "cannot read %s", path);
        for (char *p = text; (p = strstr(p, "VS_EXPORT_HOOK(")); p++) {
            const char *start = p + strlen("VS_EXPORT_HOOK("), *end = strchr(start, ')');
            if (end && strncmp(start, "name", 4) != 0)
                add(&expected, start, (size_t)(end - start));
        }
        free(text);
    }
    scan(&expected, VS_SOURCE_DIR "/include/vramshim.h", "vramshim_", true);
    cr_assert_gt(expected.n, 10, "too few hooks and API functions found in the sources");

    char *nm = command_output("nm -D --defined-only " VS_SHIM);
    for (char *line = strtok(nm, "\n"); line; line = strtok(NULL, "\n")) {
        const char *name = strrchr(line, ' ');
        add(&exported, name ? name + 1 : line, strlen(name ? name + 1 : line));
    }
    free(nm);
    for (size_t i = 0; i < exported.n; i++)
        cr_expect(has(&expected, exported.v[i]),
                  "the shim exports %s, which is neither a hook nor in include/vramshim.h",
                  exported.v[i]);
    for (size_t i = 0; i < expected.n; i++)
        cr_expect(has(&exported, expected.v[i]), "the shim does not export %s", expected.v[i]);
    names_free(&expected);
    names_free(&exported);
}

/* libasan/libubsan: what a sanitized build (`make asan`) adds on purpose. */
static bool sanitizer_runtime(const char *name)
{
    return !strncmp(name, "libasan.so", 10) || !strncmp(name, "libubsan.so", 11);
}

Test(guest_footprint, needs_no_library_beyond_libc_and_the_loader)
{
    char *dyn = command_output("readelf -d " VS_SHIM);
    const char *allowed[] = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0"};
    for (char *p = dyn; (p = strstr(p, "Shared library: [")); p++) {
        const char *name = p + strlen("Shared library: [");
        size_t len = strcspn(name, "]");
        /* the dynamic loader itself (libgcc's unwinder asks it for _dl_find_object), and in
         * `make asan` the sanitizers' runtime */
        bool ok = strncmp(name, "ld-linux", 8) == 0 || sanitizer_runtime(name);
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
            ok |= strlen(allowed[i]) == len && strncmp(name, allowed[i], len) == 0;
        cr_expect(ok, "the shim needs %.*s", (int)len, name);
    }
    free(dyn);
}

static struct vs_run run_host(int shim, const char *debug)
{
    const char *argv[] = {VS_PROG("guest_host"), "200", NULL};
    const char *env[] = {"VRAMSHIM_TRACE=/dev/null", debug, NULL};
    if (!debug)
        env[1] = NULL;
    struct vs_run r = vs_run(argv, shim, env);
    cr_assert_eq(r.status, 0, "guest_host failed (shim %d):\n%s", shim, r.raw_err);
    cr_assert(strstr(r.out, "caught 200\n"), "exceptions were not all caught:\n%s", r.out);
    return r;
}

Test(guest_footprint, loads_no_library_the_host_did_not_ask_for)
{
    struct vs_run plain = run_host(0, NULL), shim = run_host(1, NULL);
    for (char *line = strtok(shim.out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "lib ", 4) != 0 || strcmp(line, "lib libvramshim.so") == 0 ||
            sanitizer_runtime(line + 4))
            continue;
        char key[512];
        snprintf(key, sizeof key, "\n%s\n", line);
        cr_expect(strstr(plain.out, key), "the shim brought %s into the process", line + 4);
    }
    vs_run_free(&plain);
    vs_run_free(&shim);
}

Test(guest_footprint, host_exceptions_unwind_through_libgcc_s)
{
    struct vs_run r = run_host(1, "LD_DEBUG=bindings");
    const char *symbols[] = {"_Unwind_RaiseException", "_Unwind_Resume"};
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++) {
        char key[128];
        snprintf(key, sizeof key, "normal symbol `%s'", symbols[i]);
        int bindings = 0;
        for (const char *line = r.raw_err; (line = strstr(line, key)); line++) {
            const char *start = line;
            while (start > r.raw_err && start[-1] != '\n')
                start--;
            const char *to = strstr(start, " to ");
            cr_assert(to && to < line);
            /* In `make asan` libasan intercepts the unwinder's entry points on purpose. */
            const char *lib = strstr(to, "libgcc_s.so");
#ifdef __SANITIZE_ADDRESS__
            if (!lib || lib > line)
                lib = strstr(to, "libasan.so");
#endif
            cr_expect(lib && lib < line,
                      "%s is bound elsewhere: %.*s", symbols[i], (int)(line - start), start);
            bindings++;
        }
        cr_expect_gt(bindings, 0, "no binding of %s seen", symbols[i]);
    }
    vs_run_free(&r);
}
