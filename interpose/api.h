/* Internal forms of public API functions that the control socket shares (api.c). */
#ifndef VS_INTERPOSE_API_H
#define VS_INTERPOSE_API_H

#include <stdbool.h>
#include <stddef.h>

/* vramshim_demote / vramshim_promote, with the bytes moved in *moved (may be NULL). */
int vs_api_move(const char *name, bool demote, size_t *moved);

#endif
