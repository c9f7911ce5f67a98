/* cli.c - command-line options, --help and --version for every program (see xws/cli.h). */
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xws/check.h"
#include "xws/cli.h"

#ifndef XWS_VERSION
#define XWS_VERSION "unknown"
#endif

enum { MAX_OPTS = 32 };

static const xws_cli_opt_t s_common[] = {
    {'h', "help", NULL, "print this help and exit"},
    {'V', "version", NULL, "print the version and exit"},
};

const char *xws_version(void)
{
    return XWS_VERSION;
}

static size_t s_count(const xws_cli_opt_t *opts)
{
    size_t n = 0;
    while (opts != NULL && opts[n].long_name != NULL)
        n++;
    return n;
}

/* writes text from column col, wrapped at 79 columns with continuation lines indented by indent */
static void s_wrap(FILE *out, const char *text, int col, int indent)
{
    const char *p = text;
    while (*p != '\0') {
        size_t word = strcspn(p, " \n");
        if (col > indent && col + 1 + (int)word > 79) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, p);
        col += (int)word;
        p += word;
        if (*p == '\n') {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        }
        while (*p == ' ' || *p == '\n')
            p++;
    }
    fputc('\n', out);
}

static void s_opt_line(const xws_cli_opt_t *o, FILE *out)
{
    char left[64];
    int n;
    if (o->short_name != 0)
        n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->short_name, o->long_name, o->arg ? " " : "", o->arg ? o->arg : "");
    else
        n = snprintf(left, sizeof(left), "      --%s%s%s", o->long_name, o->arg ? " " : "", o->arg ? o->arg : "");
    if (n < 28) {
        fprintf(out, "%-28s", left);
        s_wrap(out, o->help, 28, 28);
    } else {
        fprintf(out, "%s\n%28s", left, "");
        s_wrap(out, o->help, 28, 28);
    }
}

void xws_cli_help(const xws_cli_t *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n", cli->program, cli->synopsis);
    s_wrap(out, cli->summary, 0, 0);
    fprintf(out, "\nOptions:\n");
    for (size_t i = 0; i < s_count(cli->opts); i++)
        s_opt_line(&cli->opts[i], out);
    for (size_t i = 0; i < sizeof(s_common) / sizeof(s_common[0]); i++)
        s_opt_line(&s_common[i], out);
    if (cli->epilog != NULL)
        fprintf(out, "\n%s", cli->epilog);
}

int xws_cli_usage_error(const xws_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli->program);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nUsage: %s %s\nTry '%s --help'.\n", cli->program, cli->synopsis, cli->program);
    return 2;
}

int xws_cli_next(const xws_cli_t *cli, int argc, char **argv, int *state, const char **arg)
{
    size_t n = s_count(cli->opts);
    assert(n + 2 < MAX_OPTS);
    struct option longs[MAX_OPTS];
    char shorts[3 * MAX_OPTS + 2] = "+:"; /* stop at the first operand; report missing values */
    size_t ns = 2;
    for (size_t i = 0; i < n + 2; i++) {
        const xws_cli_opt_t *o = i < n ? &cli->opts[i] : &s_common[i - n];
        int val = o->short_name != 0 ? o->short_name : 0x100 + (int)i;
        longs[i] = (struct option){o->long_name, o->arg ? required_argument : no_argument, NULL, val};
        if (o->short_name != 0) {
            shorts[ns++] = (char)o->short_name;
            if (o->arg)
                shorts[ns++] = ':';
        }
    }
    longs[n + 2] = (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';
    if (*state == 0)
        optind = 0; /* a full re-initialisation of getopt (the GNU meaning of 0) */
    opterr = 0;
    int c = getopt_long(argc, argv, shorts, longs, NULL);
    *state = optind;
    *arg = optarg;
    if (c == 'h') {
        xws_cli_help(cli, stdout);
        exit(0);
    }
    if (c == 'V') {
        printf("%s (XWS) %s\n", cli->program, XWS_VERSION);
        exit(0);
    }
    if (c == '?' || c == ':') {
        const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (c == ':')
            exit(xws_cli_usage_error(cli, "option %s needs a value", bad));
        exit(xws_cli_usage_error(cli, "unknown option %s", bad));
    }
    return c;
}

void xws_cli_test(void)
{
    static const xws_cli_opt_t opts[] = {
        {'c', "config", "FILE", "settings file"},
        {'v', "verbose", NULL, "more logs"},
        {0, "long-only", "N", "a long option without a letter"},
        {0},
    };
    const xws_cli_t cli = {"xws-test", "[OPTION]... ARG", "Tests.", opts, NULL};
    char *argv[] = {"xws-test", "-c", "a.conf", "--verbose", "--long-only=5", "--config", "b.conf", "rest", "-v", NULL};
    int argc = 9, state = 0, c;
    const char *arg;
    XWS_CHECK((c = xws_cli_next(&cli, argc, argv, &state, &arg)) == 'c' && strcmp(arg, "a.conf") == 0);
    XWS_CHECK(xws_cli_next(&cli, argc, argv, &state, &arg) == 'v');
    XWS_CHECK(xws_cli_next(&cli, argc, argv, &state, &arg) == 0x102 && strcmp(arg, "5") == 0);
    XWS_CHECK(xws_cli_next(&cli, argc, argv, &state, &arg) == 'c' && strcmp(arg, "b.conf") == 0);
    XWS_CHECK(xws_cli_next(&cli, argc, argv, &state, &arg) == -1);
    XWS_CHECK(state == 7 && strcmp(argv[state], "rest") == 0); /* options stop at the first operand */
    char buf[2048];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    XWS_CHECK(f != NULL);
    xws_cli_help(&cli, f);
    fclose(f);
    XWS_CHECK(strstr(buf, "Usage: xws-test [OPTION]... ARG") != NULL);
    XWS_CHECK(strstr(buf, "  -c, --config FILE") != NULL && strstr(buf, "      --long-only N") != NULL);
    XWS_CHECK(strstr(buf, "  -V, --version") != NULL && strstr(buf, "  -h, --help") != NULL);
    (void)c;
}
