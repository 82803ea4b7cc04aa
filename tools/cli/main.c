/* `vramshim` CLI entry point: dispatches to subcommands listed in vs_commands[]. */
#include <stdio.h>
#include <string.h>

#include "tools/cli/commands.h"

static const struct vs_command vs_commands[] = {
    {"run", "run a program (e.g. python main.py) under vramshim with a policy", vs_cmd_run},
    {"demo",
     "run generators shaped like reported failures: out of memory in pass-through, complete under "
     "vramshim",
     vs_cmd_demo},
    {"ctl", "control a running process: begin/end stages, status, demote/promote", vs_cmd_ctl},
    {"policy", "validate policy files and show their stages and eviction rules", vs_cmd_policy},
    {"decode", "decode latents to images/video with the tiled VAE decoder (C, CPU)", vs_cmd_decode},
    {"replay", "replay a trace through the arena on a simulated device of a given size",
     vs_cmd_replay},
    {"top", "live view of a running process: stages, tags, live/cached/demoted bytes", vs_cmd_top},
    {"trace", "read a trace: summary, top, timeline (HTML/SVG), Perfetto export", vs_cmd_trace},
    {"workload", "write a generated workload trace (SDXL/Wan VAE decode, DiT loop)",
     vs_cmd_workload},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vramshim [--help] [--version] COMMAND [ARGS...]\n"
            "\n"
            "vramshim keeps diffusion and video generators from running out of GPU memory,\n"
            "without changing them: `vramshim run --policy FILE -- python main.py`, or preload\n"
            "libvramshim.so into the program yourself.\n"
            "\n"
            "commands:\n");
    for (const struct vs_command *c = vs_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n`vramshim COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vramshim %s\n", VS_VERSION);
        return 0;
    }
    for (const struct vs_command *c = vs_commands; c->name; c++)
        if (!strcmp(argv[1], c->name))
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "vramshim: unknown command '%s' (see vramshim --help)\n", argv[1]);
    return 2;
}
