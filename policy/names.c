/* Stage and tag name registry (see names.h): a strtab whose slot index + 1 is the id. */
#include <stdlib.h>
#include <string.h>

#include "policy/names.h"
#include "policy/strtab.h"

struct vs_names {
    struct vs_strtab tab;
};

struct vs_names *vs_names_create(void)
{
    struct vs_names *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    if (vs_strtab_init(&n->tab, VS_NAMES_CAPACITY, VS_NAMES_MAX) != 0) {
        free(n);
        return NULL;
    }
    return n;
}

void vs_names_destroy(struct vs_names *n)
{
    if (!n)
        return;
    vs_strtab_destroy(&n->tab);
    free(n);
}

bool vs_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > VS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr("_.-:/@+", c));
        if (!ok)
            return false;
    }
    return true;
}

uint32_t vs_names_intern(struct vs_names *n, const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (!n || !vs_name_valid(name, len))
        return 0;
    size_t slot;
    if (!vs_strtab_insert(&n->tab, name, len, 0, &slot))
        return 0;
    return (uint32_t)slot + 1;
}

uint32_t vs_names_find(const struct vs_names *n, const char *name)
{
    size_t slot;
    if (!n || !name || !vs_strtab_find(&n->tab, name, strlen(name), &slot))
        return 0;
    return (uint32_t)slot + 1;
}

const char *vs_names_str(const struct vs_names *n, uint32_t id)
{
    if (!n || id == 0)
        return NULL;
    const struct vs_strtab_entry *e = vs_strtab_at(&n->tab, (size_t)id - 1);
    return e ? e->key : NULL;
}

size_t vs_names_count(const struct vs_names *n)
{
    return n ? atomic_load(&n->tab.count) : 0;
}
