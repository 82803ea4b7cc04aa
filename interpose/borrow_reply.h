/* A lender's reply to a borrower's `lend BYTES` request (interpose/ctl_proto.c writes it; see
 * borrow.h), read with jansson's parser.
 *
 * The reply is one JSON object: {"ok":true,...,"released_bytes":N} with an optional "refused"
 * text, or {"ok":false,"error":TEXT}. Anything else is malformed, and the account names the
 * field at fault or jansson's parse error; peer text in it is cut to printable ASCII.
 */
#ifndef VS_INTERPOSE_BORROW_REPLY_H
#define VS_INTERPOSE_BORROW_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* The bytes the lender says it released (0 on a refusal, an error or a malformed reply), from the
 * n bytes at reply (no newline; need not be NUL-terminated); `what` gets a short account:
 * "released 5.00 GiB", "lent nothing: TEXT", "error: TEXT", "malformed reply: ...". */
uint64_t vs_borrow_reply(const char *reply, size_t n, char *what, size_t len);

#endif
