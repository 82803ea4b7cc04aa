/* libFuzzer target: the control socket's request path exactly as the server runs it
 * (interpose/ctl_server.c): received bytes go through vs_ctl_feed in the pieces recv() would
 * return, and a complete line through vs_ctl_handle, the real handler (stage, stage-end, status,
 * demote, promote on the shim's real stage registry). Every reply must be one JSON object without
 * a newline.
 *
 * Input: byte 0 sets the piece size (1..64 bytes), the rest is what the client sent. Stages an
 * input began are ended after it (their names stay in the registry, as in the shim).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interpose/ctl_proto.h"
#include "interpose/init.h"
#include "interpose/runtime.h"
#include "interpose/stage.h"
#include "policy/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The registry and settings, as the first hooked call makes them (once; the replay main of the
 * normal builds has no LLVMFuzzerInitialize). Whichever driver the library path gives, if any,
 * only answers what the handler asks; no allocation is ever made. */
static void init_once(void)
{
    static bool ready;
    if (ready)
        return;
    ready = true;
    setenv("VRAMSHIM_LOG", "error", 1);
    unsetenv("VRAMSHIM_CTL");
    unsetenv("VRAMSHIM_POLICY");
    vs_init();
}

static void check_reply(char *reply)
{
    if (!reply)
        return; /* out of memory */
    json_error_t err;
    json_t *j = json_loads(reply, 0, &err);
    if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok")) || strchr(reply, '\n'))
        abort();
    json_decref(j);
    free(reply);
}

static void end_ctl_stages(void)
{
    uint32_t ids[VS_STAGE_DEPTH];
    for (size_t n = vs_stage_stack(ids, VS_STAGE_DEPTH); n > 0; n--) {
        const char *name = vs_names_str(vs_rt_names(), ids[n - 1]);
        if (!name || vs_stage_end(name, VS_STAGE_CTL) != 0)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size == 0)
        return 0;
    size_t piece = 1 + data[0] % 64;
    const char *in = (const char *)data + 1;
    size_t left = size - 1;
    struct vs_ctl_request req = {.len = 0};
    enum vs_ctl_fed fed = VS_CTL_MORE;
    while (left && fed == VS_CTL_MORE) {
        size_t n = left < piece ? left : piece, used;
        fed = vs_ctl_feed(&req, in, n, &used);
        if (used > n || req.len > sizeof req.line)
            abort();
        in += used;
        left -= used;
    }
    if (fed == VS_CTL_LINE)
        check_reply(vs_ctl_handle(req.line, req.len, 0));
    else
        check_reply(vs_ctl_error(fed == VS_CTL_TOO_LONG ? VS_CTL_ERR_TOO_LONG
                                                        : VS_CTL_ERR_INCOMPLETE));
    end_ctl_stages();
    return 0;
}
