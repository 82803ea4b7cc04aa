/* See first.h. */
#include "policy/first.h"

#include <stdlib.h>
#include <string.h>

struct vs_first *vs_first_find(struct vs_first *set, const char *text)
{
    struct vs_first *e = NULL;
    HASH_FIND_STR(set, text, e);
    return e;
}

struct vs_first *vs_first_add(struct vs_first **set, const char *text, size_t owner,
                              unsigned line, bool *oom)
{
    struct vs_first *e = vs_first_find(*set, text);
    if (e)
        return e;
    if (!(e = malloc(sizeof *e))) {
        *oom = true;
        return NULL;
    }
    *e = (struct vs_first){.text = text, .owner = owner, .line = line};
    HASH_ADD_KEYPTR(hh, *set, e->text, strlen(e->text), e);
    return NULL;
}

void vs_first_clear(struct vs_first **set)
{
    struct vs_first *e, *tmp;
    HASH_ITER(hh, *set, e, tmp) {
        HASH_DEL(*set, e);
        free(e);
    }
}
