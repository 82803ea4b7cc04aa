/* libFuzzer target: a lender's reply as a borrower reads it (interpose/borrow_reply.c), at most
 * the VS_BORROW_REPLY_MAX bytes the borrower receives: whatever the peer wrote, the account is
 * one line of printable ASCII within its buffer, and bytes count as released only with a
 * "released ..." account. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interpose/borrow.h"
#include "interpose/borrow_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char what[160];
    memset(what, 'x', sizeof what);
    uint64_t released = vs_borrow_reply((const char *)data,
                                        size < VS_BORROW_REPLY_MAX ? size : VS_BORROW_REPLY_MAX,
                                        what, sizeof what);
    size_t n = strnlen(what, sizeof what);
    if (n == sizeof what)
        abort();
    for (size_t i = 0; i < n; i++)
        if (what[i] < 0x20 || what[i] > 0x7e)
            abort();
    if (released && strncmp(what, "released ", 9) != 0)
        abort();
    return 0;
}
