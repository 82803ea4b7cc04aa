/* A borrower's reading of a lender's reply to `lend BYTES` (interpose/borrow_reply.c, compiled in
 * here: the shim keeps its symbols local). What a well-formed reply says comes through; every
 * malformed reply releases nothing and its account names the field at fault or the parse error,
 * whatever the peer wrote; peer text reaches the log line as printable ASCII only. */
#include <criterion/criterion.h>
#include <string.h>

#include "interpose/borrow_reply.c"

static uint64_t read_reply(const char *reply, char *what, size_t len)
{
    return vs_borrow_reply(reply, strlen(reply), what, len);
}

Test(borrow_reply, a_lenders_replies_come_through)
{
    char what[256];
    cr_assert_eq(read_reply("{\"ok\":true,\"asked_bytes\":4294967296,\"demoted_bytes\":4999610368,"
                            "\"released_bytes\":4999610368}",
                            what, sizeof what),
                 4999610368u);
    cr_assert_str_eq(what, "released 4.66 GiB");
    /* Spaces are JSON too. */
    cr_assert_eq(read_reply("{ \"ok\" : true, \"released_bytes\" : 1048576 }", what, sizeof what),
                 1048576u);
    cr_assert_str_eq(what, "released 1.00 MiB");
    cr_assert_eq(
        read_reply("{\"ok\":true,\"asked_bytes\":5,\"demoted_bytes\":0,\"released_bytes\":0,"
                   "\"refused\":\"busy: it answered a request 1.2 s ago\"}",
                   what, sizeof what),
        0);
    cr_assert_str_eq(what, "lent nothing: busy: it answered a request 1.2 s ago");
    cr_assert_eq(read_reply("{\"ok\":false,\"error\":\"unknown command\"}", what, sizeof what), 0);
    cr_assert_str_eq(what, "error: unknown command");
}

/* Only the n bytes given are read: the borrower passes the line without its newline. */
Test(borrow_reply, only_the_line_is_read)
{
    static const char reply[] = "{\"ok\":true,\"released_bytes\":3}\n{\"ok\":false}";
    char what[64];
    cr_assert_eq(vs_borrow_reply(reply, (size_t)(strchr(reply, '\n') - reply), what, sizeof what),
                 3);
    cr_assert_str_eq(what, "released 3 B");
}

Test(borrow_reply, malformed_replies_name_the_field_and_release_nothing)
{
    static const struct {
        const char *reply, *what;
    } cases[] = {
        {"", "malformed reply: '[' or '{' expected near end of file (byte 0)"},
        {"lent 5", "malformed reply: '[' or '{' expected near 'lent' (byte 4)"},
        {"{\"ok\":true,\"released_bytes\":", "malformed reply: unexpected token near end of file"},
        {"[1,2]", "malformed reply: not a JSON object"},
        {"{\"released_bytes\":5}", "malformed reply: \"ok\" is missing or not true or false"},
        {"{\"ok\":\"true\",\"released_bytes\":5}",
         "malformed reply: \"ok\" is missing or not true or false"},
        {"{\"ok\":false}", "malformed reply: \"error\" is missing or not a string"},
        {"{\"ok\":false,\"error\":5}", "malformed reply: \"error\" is missing or not a string"},
        {"{\"ok\":true,\"refused\":1,\"released_bytes\":5}",
         "malformed reply: \"refused\" is not a string"},
        {"{\"ok\":true}", "malformed reply: \"released_bytes\" is missing or not a byte count"},
        {"{\"ok\":true,\"released_bytes\":-1}",
         "malformed reply: \"released_bytes\" is missing or not a byte count"},
        {"{\"ok\":true,\"released_bytes\":\"5\"}",
         "malformed reply: \"released_bytes\" is missing or not a byte count"},
        {"{\"ok\":true,\"released_bytes\":1.5}",
         "malformed reply: \"released_bytes\" is missing or not a byte count"},
        {"{\"ok\":true,\"released_bytes\":99999999999999999999}",
         "malformed reply: too big integer near '99999999999999999999'"},
        {"{\"ok\":true,\"released_bytes\":1,\"released_bytes\":2}",
         "malformed reply: duplicate object key near '\"released_bytes\"'"},
        /* A key's text inside another field's string is not the key. */
        {"{\"ok\":true,\"note\":\"\\\"released_bytes\\\":5\",\"released_bytes\":\"7\"}",
         "malformed reply: \"released_bytes\" is missing or not a byte count"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[256];
        cr_assert_eq(read_reply(cases[i].reply, what, sizeof what), 0, "%s", cases[i].reply);
        cr_assert(!strncmp(what, cases[i].what, strlen(cases[i].what)), "%s:\n got  %s\n want %s",
                  cases[i].reply, what, cases[i].what);
    }
}

/* An error text that looks like a success is still an error. */
Test(borrow_reply, an_error_is_an_error_whatever_its_text)
{
    char what[128];
    cr_assert_eq(read_reply("{\"ok\":false,\"error\":\"\\\"ok\\\":true,\\\"released_bytes\\\":9\"}",
                            what, sizeof what),
                 0);
    cr_assert_str_eq(what, "error: \"ok\":true,\"released_bytes\":9");
}

/* Escapes, control bytes and UTF-8 from the peer reach the log line as '?'. */
Test(borrow_reply, peer_text_is_printable_ascii)
{
    char what[128];
    read_reply("{\"ok\":false,\"error\":\"a\\u001b[31mb\\n\\u00e9\"}", what, sizeof what);
    cr_assert_str_eq(what, "error: a?[31mb???");
    read_reply("{\"ok\":true,\"refused\":\"\\t\\u0007x\",\"released_bytes\":0}", what, sizeof what);
    cr_assert_str_eq(what, "lent nothing: ??x");
    read_reply("{\"ok\":true,\"released_bytes\":\x01}", what, sizeof what);
    for (const char *c = what; *c; c++)
        cr_assert(*c >= 0x20 && *c <= 0x7e, "%s", what);
}

/* The longest reply a borrower reads, nested as deep as it goes, and a short account buffer. */
Test(borrow_reply, deep_or_long_replies_are_bounded)
{
    char reply[512], what[24];
    memset(reply, '[', sizeof reply - 1);
    reply[sizeof reply - 1] = '\0';
    cr_assert_eq(read_reply(reply, what, sizeof what), 0);
    cr_assert_str_eq(what, "malformed reply: ']' ex");
    cr_assert_eq(read_reply("{\"ok\":false,\"error\":\"a very long error text indeed\"}", what,
                            sizeof what),
                 0);
    cr_assert_str_eq(what, "error: a very long erro");
}
