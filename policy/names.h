/* The process-wide registry of stage and tag names: one namespace, one id space.
 *
 * A valid name is 1..VS_NAME_MAX characters of letters, digits and `_ . - : / @ +` (no spaces,
 * commas or glob characters, so any name can be written in a policy file's lists). Ids are
 * 1..VS_NAMES_CAPACITY and never change; 0 means "no name". Strings returned by vs_names_str()
 * live until vs_names_destroy(), so the trace can keep pointers to them.
 *
 * Thread-safe and lock-free (policy/strtab.h): interning never blocks, so it is safe from any
 * thread and across fork(). */
#ifndef VS_POLICY_NAMES_H
#define VS_POLICY_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_NAME_MAX 40          /* inih keeps 49 characters of "stage NAME" */
#define VS_NAMES_CAPACITY 16384 /* slots (ids are slot + 1) */
#define VS_NAMES_MAX (VS_NAMES_CAPACITY / 4 * 3) /* names held at most: keeps probes short */

struct vs_names;

struct vs_names *vs_names_create(void);
void vs_names_destroy(struct vs_names *n);

/* Whether name[0..len) is a valid stage or tag name. */
bool vs_name_valid(const char *name, size_t len);

/* The id of name, registering it when new. 0 when the name is not valid or the registry is
 * full (the caller logs one line and goes on without a stage/tag). */
uint32_t vs_names_intern(struct vs_names *n, const char *name);

/* The id of a registered name, 0 when unknown. */
uint32_t vs_names_find(const struct vs_names *n, const char *name);

/* The name of an id; NULL for 0 or an unknown id. */
const char *vs_names_str(const struct vs_names *n, uint32_t id);

/* Number of registered names. */
size_t vs_names_count(const struct vs_names *n);

#endif
