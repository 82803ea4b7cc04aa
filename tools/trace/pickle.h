/* A bounded reader of Python pickles for plain data (what torch.cuda.memory._dump_snapshot
 * writes): dicts, lists, tuples, str, int (64-bit), float, bool and None, protocols 2 to 5.
 * Anything else (classes, globals, bytes, sets, protocol 0/1 text opcodes) is refused with the
 * byte offset of the opcode: nothing in the file is ever executed or looked up.
 *
 * Bounds: every object comes from at least one byte of input, so memory is linear in the
 * input's size; memo indices must be assigned in order (as Python's pickler does), strings must
 * lie inside the input, integers must fit in 64 bits. Objects shared through the memo are the
 * same object; a cycle cannot be built, since containers are filled only from the stack. */
#ifndef VS_TRACE_PICKLE_H
#define VS_TRACE_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vs_pk_type { VS_PK_NONE, VS_PK_BOOL, VS_PK_INT, VS_PK_FLOAT, VS_PK_STR, VS_PK_LIST,
                  VS_PK_TUPLE, VS_PK_DICT, VS_PK_MARK };

struct vs_pk {
    enum vs_pk_type type;
    size_t offset;              /* byte offset of the opcode that made it */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *s;      /* into the input; not NUL-terminated */
            size_t len;
        } str;
        struct {
            struct vs_pk **items; /* dicts: key, value, key, value, ... */
            size_t n, cap;
        } seq;
    } u;
    struct vs_pk *all;          /* every object of one load, for freeing */
};

struct vs_pickle {
    struct vs_pk *all;
    const struct vs_pk *root;
};

/* Reads the pickle in buf (which must outlive p). Returns 0, or -1 with "byte N: what" in err
 * (and nothing to free). */
int vs_pickle_load(const unsigned char *buf, size_t len, struct vs_pickle *p, char *err,
                   size_t errlen);
void vs_pickle_free(struct vs_pickle *p);

/* The value of dict's str key, NULL when dict is not a dict or has no such key. */
const struct vs_pk *vs_pk_get(const struct vs_pk *dict, const char *key);
/* "dict", "list", ... for messages */
const char *vs_pk_type_name(enum vs_pk_type t);

#endif
