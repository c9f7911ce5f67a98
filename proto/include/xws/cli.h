/*
 * xws/cli.h - one command-line front for every XWS program: short and long options from one
 * table, and -h/--help and -V/--version answered the same way everywhere. The help text is also
 * the source of the manual pages (help2man, see the top CMakeLists.txt).
 */
#ifndef XWS_CLI_H
#define XWS_CLI_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One option of a program: 'c', "config", "FILE" (NULL for a flag), "settings file (...)". */
typedef struct {
    int short_name; /* a letter, or 0 for a long-only option */
    const char *long_name;
    const char *arg;
    const char *help;
} xws_cli_opt_t;

typedef struct {
    const char *program;       /* "xws-call" */
    const char *synopsis;      /* after the program name: "[OPTION]... SERVICE RESOURCE ACT [BODY]" */
    const char *summary;       /* what the program does, one or more lines */
    const xws_cli_opt_t *opts; /* the program's options, ended by {0} */
    const char *epilog;        /* exit status, environment, examples (may be NULL) */
} xws_cli_t;

/* The version of this build ("0.9.0", the CMake project version). */
const char *xws_version(void);

/* Writes the help text: usage, summary, every option (then -h and -V), epilog. */
void xws_cli_help(const xws_cli_t *cli, FILE *out);

/*
 * The next option of argv (getopt_long underneath; start with *state = 0): returns its
 * short_name, or 0x100 + its index in opts for a long-only option, with its value in *arg; -1
 * when the options end (the operands start at argv[*state] then). Answers -h/--help and
 * -V/--version itself (printed on stdout, then exit(0)); an unknown option or a missing value is
 * reported with the usage on stderr, then exit(2).
 */
int xws_cli_next(const xws_cli_t *cli, int argc, char **argv, int *state, const char **arg);

/* Reports a usage error ("program: message" and the usage line on stderr); returns 2. */
int xws_cli_usage_error(const xws_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void xws_cli_test(void);

#ifdef __cplusplus
}
#endif
#endif
