/* Subcommands of the `vramshim` CLI. Each lives in its own tools/cli/cmd_*.c and gets argv
 * starting at its own name (argv[0] is the subcommand). Returns the process exit status. */
#ifndef VS_CLI_COMMANDS_H
#define VS_CLI_COMMANDS_H

struct vs_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int vs_cmd_workload(int argc, char **argv);
int vs_cmd_replay(int argc, char **argv);
int vs_cmd_decode(int argc, char **argv);
int vs_cmd_policy(int argc, char **argv);
int vs_cmd_demo(int argc, char **argv);
int vs_cmd_run(int argc, char **argv);
int vs_cmd_ctl(int argc, char **argv);
int vs_cmd_trace(int argc, char **argv);
int vs_cmd_top(int argc, char **argv);
/* `vramshim policy suggest` (policy_suggest.c), argv from "suggest". */
int vs_policy_suggest(int argc, char **argv);

#endif
