/* Parsing and execution of control socket requests (protocol in ctl_proto.h). A request is
 * fully validated before anything runs, so a rejected one changes nothing. */
#include "interpose/ctl_proto.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interpose/api.h"
#include "interpose/lend.h"
#include "interpose/stage.h"
#include "interpose/status.h"
#include "policy/names.h"
#include "vramshim.h"

enum cmd { CMD_STAGE, CMD_STAGE_END, CMD_STATUS, CMD_DEMOTE, CMD_PROMOTE, CMD_LEND };

enum arg { ARG_NONE, ARG_NAME, ARG_BYTES };

static const struct {
    const char *name;
    enum arg arg;
} cmds[] = {
    [CMD_STAGE] = {"stage", ARG_NAME},     [CMD_STAGE_END] = {"stage-end", ARG_NAME},
    [CMD_STATUS] = {"status", ARG_NONE},   [CMD_DEMOTE] = {"demote", ARG_NAME},
    [CMD_PROMOTE] = {"promote", ARG_NAME}, [CMD_LEND] = {"lend", ARG_BYTES},
};

/* A byte count: 1 to 19 decimal digits, at most VS_CTL_LEND_MAX. */
static bool parse_bytes(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || strspn(s, "0123456789") != n)
        return false;
    *out = strtoull(s, NULL, 10);
    return *out <= VS_CTL_LEND_MAX;
}

char *vs_ctl_error(const char *message)
{
    json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", message);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static char *reply_ok(json_t *fields)
{
    if (!fields)
        return NULL;
    json_object_set_new(fields, "ok", json_true());
    char *text = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(fields);
    return text;
}

static char *lend(const char *arg, int peer_pid)
{
    uint64_t bytes;
    parse_bytes(arg, &bytes); /* checked by vs_ctl_handle */
    struct vs_lend_result res;
    vs_lend(bytes, peer_pid, &res);
    json_t *o = json_pack("{s:I,s:I,s:I}", "asked_bytes", (json_int_t)bytes, "demoted_bytes",
                          (json_int_t)res.demoted, "released_bytes", (json_int_t)res.released);
    if (o && res.reason)
        json_object_set_new(o, "refused", json_string(res.reason));
    return reply_ok(o);
}

static const char *code_message(int rc)
{
    switch (rc) {
    case VRAMSHIM_EINVAL:
        return "invalid name";
    case VRAMSHIM_ENOTFOUND:
        return "no such stage or tag";
    case VRAMSHIM_EMISMATCH:
        return "another stage begun inside it is still open; nothing ended";
    case VRAMSHIM_EDEPTH:
        return "too many open stages";
    case VRAMSHIM_EUNSUPPORTED:
        return "not available in this process (passthrough mode, the arena fell back to the "
               "driver, or no host-memory mapping)";
    default:
        return "internal failure (see the process's stderr)";
    }
}

static char *run(enum cmd c, const char *arg, int peer_pid)
{
    char msg[160];
    int rc;
    switch (c) {
    case CMD_LEND:
        return lend(arg, peer_pid);
    case CMD_STATUS: {
        /* The status is JSON text already: embedded as it is, the shim parses no JSON (its
         * static jansson leaves out the parser, see Makefile). */
        char *status = vs_status_json(), *text = NULL;
        if (status && asprintf(&text, "{\"status\":%s,\"ok\":true}", status) < 0)
            text = NULL;
        free(status);
        return text;
    }
    case CMD_STAGE:
    case CMD_STAGE_END:
        rc = c == CMD_STAGE ? vs_stage_begin(arg, VS_STAGE_CTL) : vs_stage_end(arg, VS_STAGE_CTL);
        if (rc == VRAMSHIM_OK)
            return reply_ok(json_pack("{s:s,s:s}", c == CMD_STAGE ? "began" : "ended", arg,
                                      "stage", arg));
        break;
    case CMD_DEMOTE:
    case CMD_PROMOTE: {
        size_t moved = 0;
        rc = vs_api_move(arg, c == CMD_DEMOTE, &moved);
        if (rc == VRAMSHIM_OK)
            return reply_ok(json_pack("{s:s,s:I}", cmds[c].name, arg, "moved_bytes",
                                      (json_int_t)moved));
        break;
    }
    }
    snprintf(msg, sizeof msg, "%s %s: %s", cmds[c].name, arg, code_message(rc));
    return vs_ctl_error(msg);
}

enum vs_ctl_fed vs_ctl_feed(struct vs_ctl_request *r, const char *data, size_t n, size_t *used)
{
    size_t room = sizeof r->line - r->len;
    const char *nl = memchr(data, '\n', n < room ? n : room);
    size_t take = nl ? (size_t)(nl - data) : (n < room ? n : room);
    memcpy(r->line + r->len, data, take);
    r->len += take;
    *used = take + (nl != NULL);
    if (nl)
        return VS_CTL_LINE;
    return r->len == sizeof r->line ? VS_CTL_TOO_LONG : VS_CTL_MORE;
}

char *vs_ctl_handle(const char *line, size_t len, int peer_pid)
{
    char msg[200];
    if (len >= VS_CTL_MAX_REQUEST)
        return vs_ctl_error("request too long");
    for (size_t i = 0; i < len; i++)
        if (line[i] < 0x20 || line[i] > 0x7e)
            return vs_ctl_error("request contains a byte that is not printable ASCII");
    char req[VS_CTL_MAX_REQUEST];
    memcpy(req, line, len);
    req[len] = '\0';
    char *space = strchr(req, ' ');
    const char *arg = space ? space + 1 : NULL;
    if (space)
        *space = '\0';
    for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
        if (strcmp(req, cmds[c].name) != 0)
            continue;
        if (cmds[c].arg == ARG_NONE && arg) {
            snprintf(msg, sizeof msg, "'%s' takes no argument", cmds[c].name);
            return vs_ctl_error(msg);
        }
        uint64_t bytes;
        if (cmds[c].arg == ARG_BYTES && (!arg || !parse_bytes(arg, &bytes))) {
            snprintf(msg, sizeof msg, "'%s' needs a byte count (a whole number from 0 to %llu)",
                     cmds[c].name, (unsigned long long)VS_CTL_LEND_MAX);
            return vs_ctl_error(msg);
        }
        if (cmds[c].arg == ARG_NAME && (!arg || !vs_name_valid(arg, strlen(arg)))) {
            snprintf(msg, sizeof msg,
                     "'%s' needs one stage or tag name (1 to %d letters, digits or _.-:/@+)",
                     cmds[c].name, VS_NAME_MAX);
            return vs_ctl_error(msg);
        }
        return run((enum cmd)c, arg, peer_pid);
    }
    snprintf(msg, sizeof msg,
             "unknown command '%.40s' (expected stage, stage-end, status, demote, promote or "
             "lend)",
             req);
    return vs_ctl_error(msg);
}
