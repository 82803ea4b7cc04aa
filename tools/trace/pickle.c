/* The bounded pickle reader (see pickle.h). A stack machine over the opcodes of protocols 2-5
 * that build plain data; the stack and memo are arrays that grow with the input. */
#include "tools/trace/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vs_unpickler {
    const unsigned char *buf;
    size_t len, pos, op;        /* op: offset of the current opcode */
    struct vs_pickle *p;
    struct vs_pk **stack, **memo;
    size_t n_stack, cap_stack, n_memo, cap_memo;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int vs_fail(struct vs_unpickler *u, const char *fmt,
                                                         ...)
{
    int n = snprintf(u->err, u->errlen, "byte %zu: ", u->op);
    if (n >= 0 && (size_t)n < u->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(u->err + n, u->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *vs_pk_type_name(enum vs_pk_type t)
{
    static const char *const names[] = {"None", "bool", "int", "float", "str",
                                        "list", "tuple", "dict", "mark"};
    return names[t];
}

static int vs_grow(struct vs_unpickler *u, struct vs_pk ***arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    struct vs_pk **grown = realloc(*arr, c * sizeof *grown);
    if (!grown)
        return vs_fail(u, "out of memory");
    *arr = grown;
    *cap = c;
    return 0;
}

static struct vs_pk *vs_new(struct vs_unpickler *u, enum vs_pk_type type)
{
    struct vs_pk *o = calloc(1, sizeof *o);
    if (!o) {
        vs_fail(u, "out of memory");
        return NULL;
    }
    o->type = type;
    o->offset = u->op;
    o->all = u->p->all;
    u->p->all = o;
    return o;
}

static int vs_push(struct vs_unpickler *u, struct vs_pk *o)
{
    if (!o || vs_grow(u, &u->stack, &u->cap_stack, u->n_stack + 1))
        return -1;
    u->stack[u->n_stack++] = o;
    return 0;
}

static int vs_take(struct vs_unpickler *u, size_t n, const unsigned char **out)
{
    if (u->len - u->pos < n)
        return vs_fail(u, "the file ends inside this opcode's argument (truncated pickle?)");
    *out = u->buf + u->pos;
    u->pos += n;
    return 0;
}

static uint64_t vs_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Reads an n-byte little-endian length or index argument. */
static int vs_arg(struct vs_unpickler *u, size_t n, uint64_t *v)
{
    const unsigned char *p = NULL;
    if (vs_take(u, n, &p))
        return -1;
    *v = vs_le(p, n);
    return 0;
}

static int vs_str(struct vs_unpickler *u, size_t width)
{
    uint64_t n;
    const unsigned char *p = NULL;
    if (vs_arg(u, width, &n))
        return -1;
    if (n > u->len - u->pos)
        return vs_fail(u, "a string of %llu bytes runs past the end of the file",
                       (unsigned long long)n);
    if (vs_take(u, (size_t)n, &p))
        return -1;
    struct vs_pk *o = vs_new(u, VS_PK_STR);
    if (o) {
        o->u.str.s = (const char *)p;
        o->u.str.len = (size_t)n;
    }
    return vs_push(u, o);
}

/* LONG1 / LONG4: little-endian two's complement, at most 8 bytes here. */
static int vs_long(struct vs_unpickler *u, size_t width)
{
    uint64_t n;
    const unsigned char *p = NULL;
    if (vs_arg(u, width, &n))
        return -1;
    if (n > 8)
        return vs_fail(u, "an integer of %llu bytes (at most 8 are read)", (unsigned long long)n);
    if (vs_take(u, (size_t)n, &p))
        return -1;
    uint64_t v = vs_le(p, (size_t)n);
    if (n && n < 8 && (p[n - 1] & 0x80))
        v |= ~0ull << (8 * n);
    struct vs_pk *o = vs_new(u, VS_PK_INT);
    if (o)
        o->u.i = (int64_t)v;
    return vs_push(u, o);
}

static int vs_int(struct vs_unpickler *u, size_t width, bool is_signed)
{
    uint64_t v;
    if (vs_arg(u, width, &v))
        return -1;
    struct vs_pk *o = vs_new(u, VS_PK_INT);
    if (o)
        o->u.i = is_signed ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
    return vs_push(u, o);
}

static int vs_float(struct vs_unpickler *u)
{
    const unsigned char *p = NULL;
    if (vs_take(u, 8, &p))
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | p[i]; /* big-endian */
    struct vs_pk *o = vs_new(u, VS_PK_FLOAT);
    if (o)
        memcpy(&o->u.f, &bits, sizeof o->u.f);
    return vs_push(u, o);
}

/* Index of the topmost mark on the stack. */
static int vs_mark(struct vs_unpickler *u, size_t *at)
{
    for (size_t i = u->n_stack; i-- > 0;)
        if (u->stack[i]->type == VS_PK_MARK) {
            *at = i;
            return 0;
        }
    return vs_fail(u, "no mark on the stack for this opcode");
}

static int vs_append(struct vs_unpickler *u, struct vs_pk *seq, struct vs_pk **items, size_t n)
{
    if (n == 0) /* APPENDS on a MARK with nothing after it: the list may have no storage yet */
        return 0;
    if (vs_grow(u, &seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + n))
        return -1;
    memcpy(seq->u.seq.items + seq->u.seq.n, items, n * sizeof *items);
    seq->u.seq.n += n;
    return 0;
}

/* APPEND(S) and SETITEM(S): the container below the items gets them. */
static int vs_fill(struct vs_unpickler *u, size_t from, enum vs_pk_type want)
{
    if (from == 0)
        return vs_fail(u, "no container below the items on the stack");
    struct vs_pk *c = u->stack[from - 1];
    size_t n = u->n_stack - from;
    if (c->type != want)
        return vs_fail(u, "adds items to a %s, not a %s", vs_pk_type_name(c->type),
                       vs_pk_type_name(want));
    if (want == VS_PK_DICT && n % 2)
        return vs_fail(u, "a dict update with a key and no value");
    if (vs_append(u, c, u->stack + from, n))
        return -1;
    u->n_stack = from;
    return 0;
}

static int vs_tuple(struct vs_unpickler *u, size_t from)
{
    struct vs_pk *t = vs_new(u, VS_PK_TUPLE);
    if (!t || vs_append(u, t, u->stack + from, u->n_stack - from))
        return -1;
    u->n_stack = from;
    return vs_push(u, t);
}

static int vs_memo_put(struct vs_unpickler *u, uint64_t index)
{
    if (!u->n_stack)
        return vs_fail(u, "memoizes an empty stack");
    if (index > u->n_memo)
        return vs_fail(u, "memo index %llu out of order (next is %zu)", (unsigned long long)index,
                       u->n_memo);
    if (index == u->n_memo && vs_grow(u, &u->memo, &u->cap_memo, ++u->n_memo))
        return -1;
    u->memo[index] = u->stack[u->n_stack - 1];
    return 0;
}

static int vs_memo_get(struct vs_unpickler *u, uint64_t index)
{
    if (index >= u->n_memo)
        return vs_fail(u, "memo index %llu was never stored", (unsigned long long)index);
    return vs_push(u, u->memo[index]);
}

/* What a refused opcode is, for the message. */
static const char *vs_refused_name(unsigned char op)
{
    switch (op) {
    case 'c': case 0x93: return "a reference to a class or function";
    case 'R': case 0x81: case 0x92: case 'b': case 'i': case 'o': return "building an object";
    case 'B': case 'C': case 0x8e: case 0x96: case 0x97: return "bytes";
    case 0x8f: case 0x90: case 0x91: return "a set";
    case 'P': case 'Q': return "a persistent id";
    case 0x82: case 0x83: case 0x84: return "an extension code";
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'l': case 'd': case 'g': case 'p':
        return "a protocol 0 text opcode";
    default: return "not a pickle opcode";
    }
}

static int vs_opcode(struct vs_unpickler *u, unsigned char op, bool *stop)
{
    uint64_t v;
    size_t at = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if (vs_arg(u, 1, &v))
            return -1;
        return v < 2 || v > 5 ? vs_fail(u, "pickle protocol %llu (this reader takes 2 to 5)",
                                        (unsigned long long)v)
                              : 0;
    case 0x95: return vs_arg(u, 8, &v);            /* FRAME: a size hint */
    case '}': return vs_push(u, vs_new(u, VS_PK_DICT));
    case ']': return vs_push(u, vs_new(u, VS_PK_LIST));
    case ')': return vs_push(u, vs_new(u, VS_PK_TUPLE));
    case '(': return vs_push(u, vs_new(u, VS_PK_MARK));
    case 'N': return vs_push(u, vs_new(u, VS_PK_NONE));
    case 0x88:
    case 0x89: {
        struct vs_pk *o = vs_new(u, VS_PK_BOOL);
        if (o)
            o->u.b = op == 0x88;
        return vs_push(u, o);
    }
    case 'X': return vs_str(u, 4);                 /* BINUNICODE */
    case 0x8c: return vs_str(u, 1);                /* SHORT_BINUNICODE */
    case 0x8d: return vs_str(u, 8);                /* BINUNICODE8 */
    case 'J': return vs_int(u, 4, true);           /* BININT */
    case 'K': return vs_int(u, 1, false);          /* BININT1 */
    case 'M': return vs_int(u, 2, false);          /* BININT2 */
    case 0x8a: return vs_long(u, 1);               /* LONG1 */
    case 0x8b: return vs_long(u, 4);               /* LONG4 */
    case 'G': return vs_float(u);                  /* BINFLOAT */
    case 's':                                      /* SETITEM */
        return u->n_stack < 3 ? vs_fail(u, "SETITEM needs a dict, a key and a value")
                              : vs_fill(u, u->n_stack - 2, VS_PK_DICT);
    case 'a':                                      /* APPEND */
        return u->n_stack < 2 ? vs_fail(u, "APPEND needs a list and an item")
                              : vs_fill(u, u->n_stack - 1, VS_PK_LIST);
    case 'u':                                      /* SETITEMS */
    case 'e':                                      /* APPENDS */
        if (vs_mark(u, &at))
            return -1;
        memmove(u->stack + at, u->stack + at + 1, (u->n_stack - at - 1) * sizeof *u->stack);
        u->n_stack--;
        return vs_fill(u, at, op == 'u' ? VS_PK_DICT : VS_PK_LIST);
    case 't':                                      /* TUPLE */
        if (vs_mark(u, &at))
            return -1;
        memmove(u->stack + at, u->stack + at + 1, (u->n_stack - at - 1) * sizeof *u->stack);
        u->n_stack--;
        return vs_tuple(u, at);
    case 0x85:
    case 0x86:
    case 0x87:                                     /* TUPLE1..3 */
        if (u->n_stack < (size_t)(op - 0x84))
            return vs_fail(u, "a tuple of %d items from a stack of %zu", op - 0x84, u->n_stack);
        return vs_tuple(u, u->n_stack - (size_t)(op - 0x84));
    case '0':                                      /* POP */
        if (!u->n_stack)
            return vs_fail(u, "POP on an empty stack");
        u->n_stack--;
        return 0;
    case '1':                                      /* POP_MARK */
        if (vs_mark(u, &at))
            return -1;
        u->n_stack = at;
        return 0;
    case 'q': return vs_arg(u, 1, &v) || vs_memo_put(u, v);   /* BINPUT */
    case 'r': return vs_arg(u, 4, &v) || vs_memo_put(u, v);   /* LONG_BINPUT */
    case 0x94: return vs_memo_put(u, u->n_memo);              /* MEMOIZE */
    case 'h': return vs_arg(u, 1, &v) || vs_memo_get(u, v);   /* BINGET */
    case 'j': return vs_arg(u, 4, &v) || vs_memo_get(u, v);   /* LONG_BINGET */
    case '.':                                      /* STOP */
        *stop = true;
        return 0;
    default:
        return vs_fail(u, "pickle opcode 0x%02x (%s) is not read here: a memory snapshot holds "
                          "only dicts, lists, tuples, strings, numbers, booleans and None",
                       op, vs_refused_name(op));
    }
}

int vs_pickle_load(const unsigned char *buf, size_t len, struct vs_pickle *p, char *err,
                   size_t errlen)
{
    memset(p, 0, sizeof *p);
    struct vs_unpickler u = {.buf = buf, .len = len, .p = p, .err = err, .errlen = errlen};
    bool stop = false;
    int rc = 0;
    if (len < 2 || buf[0] != 0x80) {
        rc = vs_fail(&u, "not a pickle of protocol 2 or later (it would start with byte 0x80)");
    }
    while (!rc && !stop) {
        if (u.pos == u.len) {
            u.op = u.pos;
            rc = vs_fail(&u, "the file ends before the pickle's STOP opcode (truncated pickle?)");
            break;
        }
        u.op = u.pos;
        rc = vs_opcode(&u, buf[u.pos++], &stop);
    }
    if (!rc && (u.n_stack != 1 || u.stack[0]->type == VS_PK_MARK))
        rc = vs_fail(&u, "the pickle ends with %zu objects on its stack (expected one)",
                     u.n_stack);
    if (!rc)
        p->root = u.stack[0];
    free(u.stack);
    free(u.memo);
    if (rc)
        vs_pickle_free(p);
    return rc;
}

void vs_pickle_free(struct vs_pickle *p)
{
    for (struct vs_pk *o = p->all, *next; o; o = next) {
        next = o->all;
        if (o->type == VS_PK_LIST || o->type == VS_PK_TUPLE || o->type == VS_PK_DICT)
            free(o->u.seq.items);
        free(o);
    }
    memset(p, 0, sizeof *p);
}

const struct vs_pk *vs_pk_get(const struct vs_pk *dict, const char *key)
{
    if (!dict || dict->type != VS_PK_DICT)
        return NULL;
    size_t klen = strlen(key);
    const struct vs_pk *found = NULL;
    for (size_t i = 0; i + 1 < dict->u.seq.n; i += 2) {
        const struct vs_pk *k = dict->u.seq.items[i];
        if (k->type == VS_PK_STR && k->u.str.len == klen && !memcmp(k->u.str.s, key, klen))
            found = dict->u.seq.items[i + 1];
    }
    return found;
}
