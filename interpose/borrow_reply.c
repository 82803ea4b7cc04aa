/* A lender's reply (see borrow_reply.h). */
#include "interpose/borrow_reply.h"

#include <jansson.h>
#include <stdio.h>

#include "common/size.h"

/* The shim links a copy of Debian's libjansson.a whose parser refers to libc's stdin by this name
 * (Makefile: SHIM_JANSSON_A): json_loadf compares its stream with stdin only to name it in
 * errors, and its PC-relative access to stdin cannot be linked into a shared object. The shim
 * parses no stream, so this stays NULL. */
__attribute__((visibility("hidden"))) FILE *vs_jansson_stdin;

/* Copies s into out, bytes outside printable ASCII as '?' (peer text goes into a log line). */
static const char *printable(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        out[n++] = *s >= 0x20 && *s <= 0x7e ? *s : '?';
    out[n] = '\0';
    return out;
}

uint64_t vs_borrow_reply(const char *reply, size_t n, char *what, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(reply, n, JSON_REJECT_DUPLICATES, &err);
    json_t *ok = json_object_get(o, "ok"), *error = json_object_get(o, "error"),
           *refused = json_object_get(o, "refused"), *bytes = json_object_get(o, "released_bytes");
    uint64_t released = 0;
    char text[200], size[32];
    if (!o)
        snprintf(what, len, "malformed reply: %s (byte %d)", printable(err.text, text, sizeof text),
                 err.position);
    else if (!json_is_object(o))
        snprintf(what, len, "malformed reply: not a JSON object");
    else if (!json_is_boolean(ok))
        snprintf(what, len, "malformed reply: \"ok\" is missing or not true or false");
    else if (json_is_false(ok) && !json_is_string(error))
        snprintf(what, len, "malformed reply: \"error\" is missing or not a string");
    else if (json_is_false(ok))
        snprintf(what, len, "error: %s", printable(json_string_value(error), text, sizeof text));
    else if (refused && !json_is_string(refused))
        snprintf(what, len, "malformed reply: \"refused\" is not a string");
    else if (refused)
        snprintf(what, len, "lent nothing: %s",
                 printable(json_string_value(refused), text, sizeof text));
    else if (!json_is_integer(bytes) || json_integer_value(bytes) < 0)
        snprintf(what, len, "malformed reply: \"released_bytes\" is missing or not a byte count");
    else {
        released = (uint64_t)json_integer_value(bytes);
        snprintf(what, len, "released %s", vs_size_format(released, size, sizeof size));
    }
    json_decref(o);
    return released;
}
