/* Pointer-identity routing table (see hooks.h). */
#include "interpose/hooks.h"
#include "interpose/realdl.h"

#include <string.h>

/* Every hook forwards to the driver table's entry of its name, which has the hook's type. */
#define VS_HOOK_ENTRY(name, type)                                                         \
    _Static_assert(__builtin_types_compatible_p(type, __typeof__(((struct vs_driver *)0)->name)), \
                   #name ": the driver table's entry has another type");
VS_HOOKS(VS_HOOK_ENTRY)
#undef VS_HOOK_ENTRY

void *vs_hook_for(void *real)
{
#define VS_HOOK_MATCH(name, type)                                       \
    if (real == (void *)vs_drv.name || real == (void *)&vs_hook_##name) \
        return vs_drv.name ? (void *)&vs_hook_##name : NULL;
    VS_HOOKS(VS_HOOK_MATCH)
#undef VS_HOOK_MATCH
    return real;
}

VS_UNINSTRUMENTED bool vs_is_hooked_name(const char *name)
{
    if (!name || name[0] != 'c' || name[1] != 'u')
        return false;
#define VS_HOOK_NAME(name_, type)  \
    if (strcmp(name, #name_) == 0) \
        return true;
    VS_HOOKS(VS_HOOK_NAME)
#undef VS_HOOK_NAME
    return false;
}

const char *vs_family_name(enum vs_family family)
{
    static const char *const names[] = {
#define VS_FAMILY_TEXT(id, text) text,
        VS_FAMILIES(VS_FAMILY_TEXT)
#undef VS_FAMILY_TEXT
    };
    return (unsigned)family < VS_FAM_COUNT ? names[family] : "?";
}

const char *vs_hook_name(enum vs_hook_id id)
{
    static const char *const names[] = {
#define VS_HOOK_TEXT(name, type) #name,
        VS_HOOKS(VS_HOOK_TEXT)
#undef VS_HOOK_TEXT
    };
    return (unsigned)id < VS_HOOK_COUNT ? names[id] : "?";
}
