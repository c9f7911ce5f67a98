/*
 * proto_test.c - runs every self-test of the proto library, and (with --corpus DIR) checks
 * xws_json_to_msgpack() against the JSONTestSuite parsing corpus.
 *
 *   xws-proto-test                 the self-tests
 *   xws-proto-test --corpus DIR    the corpus: y_* accepted, n_* refused, i_* either way
 *
 * Exit status: 0 when everything passed, 1 on a failure, 77 when the corpus directory is missing
 * (ctest reports that test as skipped).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "xws/proto.h"
#include "xws/frames.h"
#include "xws/cli.h"
#include "xws/log.h"
#include "xws/notify.h"
#include "xws/config.h"
#include "xws/curve.h"

static int passed, failed;

/* counts one check; never depends on NDEBUG */
#define CHECK(x)                                                                                                                   \
    do {                                                                                                                           \
        if (x) {                                                                                                                   \
            passed++;                                                                                                              \
        } else {                                                                                                                   \
            failed++;                                                                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                                                  \
        }                                                                                                                          \
    } while (0)

/* a self-test aborts on its first failure, so returning means it passed */
static void s_run(const char *name, void (*test)(void))
{
    fprintf(stderr, "  %s ... ", name);
    test();
    fprintf(stderr, "ok\n");
    passed++;
}

/*
 * Accepted y_ files that jansson (hence the gateway) cannot represent; the contract refuses them
 * on purpose:
 * - y_object_escaped_null_in_key.json: "\u0000" in an object key; PROTOCOL.md §7 forbids NUL in
 *   keys and jansson refuses it ("NUL byte in object key not supported").
 */
static const char *const y_refused[] = {"y_object_escaped_null_in_key.json", NULL};

static int s_listed(const char *name, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(name, *list) == 0)
            return 1;
    return 0;
}

static int s_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap && (buf = realloc(buf, cap *= 2)) == NULL)
            abort();
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

static int s_corpus(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "JSON corpus %s not found (%s): test skipped\n", dir, strerror(errno));
        return 77;
    }
    struct dirent *e;
    int y = 0, n = 0, i = 0, y_ref = 0;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t nl = strlen(name);
        if (nl < 6 || strcmp(name + nl - 5, ".json") != 0 || name[1] != '_')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        char *data;
        size_t len;
        if (s_read_file(path, &data, &len) != 0) {
            fprintf(stderr, "cannot read %s\n", path);
            failed++;
            continue;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        char errbuf[256] = "";
        int rc = xws_json_to_msgpack(data, len, &sb, errbuf, sizeof(errbuf));
        if (rc == 0) {
            /* what was accepted is one valid msgpack object with a JSON form */
            msgpack_unpacked u;
            const char *err;
            xws_buf_t out;
            xws_buf_init(&out);
            CHECK(xws_msgpack_decode(&u, sb.data, sb.size, XWS_MAX_DEPTH, &err) == 0);
            CHECK(xws_msgpack_to_json(&u.data, &out) == 0);
            /* and renders to JSON that reads back to the same msgpack */
            msgpack_sbuffer again;
            msgpack_sbuffer_init(&again);
            CHECK(xws_json_to_msgpack(out.data, out.len, &again, NULL, 0) == 0 && again.size == sb.size &&
                  memcmp(again.data, sb.data, sb.size) == 0);
            msgpack_sbuffer_destroy(&again);
            msgpack_unpacked_destroy(&u);
            xws_buf_dispose(&out);
        } else {
            CHECK(sb.size == 0 && strncmp(errbuf, "invalid JSON", 12) == 0);
        }
        switch (name[0]) {
        case 'y':
            y++;
            if (s_listed(name, y_refused)) {
                y_ref++;
                CHECK(rc == -1);
            } else {
                if (rc != 0)
                    fprintf(stderr, "%s refused: %s\n", name, errbuf);
                CHECK(rc == 0);
            }
            break;
        case 'n':
            n++;
            if (rc == 0)
                fprintf(stderr, "%s accepted\n", name);
            CHECK(rc == -1);
            break;
        default:
            i++;
            break;
        }
        msgpack_sbuffer_destroy(&sb);
        free(data);
    }
    closedir(d);
    fprintf(stderr, "corpus: %d y_ (%d refused by design), %d n_, %d i_ files\n", y, y_ref, n, i);
    CHECK(y > 0 && n > 0);
    return 0;
}

int main(int argc, char **argv)
{
    zsys_init();
    zsys_handler_set(NULL);
    if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
        int rc = s_corpus(argv[2]);
        if (rc == 77)
            return 77;
    } else if (argc == 1) {
        fprintf(stderr, "self-tests:\n");
        s_run("buf", xws_buf_test);
        s_run("msgpack", xws_msgpack_test);
        s_run("envelope", xws_envelope_test);
        s_run("json", xws_json_test);
        s_run("frames", xws_frames_test);
        s_run("config", xws_config_test);
        s_run("cli", xws_cli_test);
        s_run("notify", xws_notify_test);
        s_run("log", xws_log_test);
        s_run("curve", xws_curve_test);
    } else {
        fprintf(stderr, "usage: %s [--corpus DIR]\n", argv[0]);
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
