/* curve.c - CURVE certificates and the client side of CURVE (see xws/curve.h). */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "xws/check.h"
#include "xws/curve.h"

/* the Z85 text of 32 zero bytes: what czmq reports for a certificate without a secret key */
/* a certificate file is a few hundred bytes: anything larger is not one */
#define CERT_MAX 8192

static const char s_no_key[] = "0000000000000000000000000000000000000000";

static void s_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

int xws_curve_available(void)
{
    return zsys_has_curve() ? 1 : 0;
}

int xws_curve_name_ok(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 64 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

zcert_t *xws_curve_load(const char *path, int with_secret, char *why, size_t whylen)
{
    assert(path != NULL);
    /* zcert_load(path) would read "path_secret" first when it exists, and zconfig_load leaks on a
     * malformed file: read exactly this file, bounded, and parse the text */
    char text[CERT_MAX + 1];
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(text, 1, sizeof(text), f) : 0;
    int bad = f == NULL || ferror(f);
    int saved = errno;
    if (f != NULL)
        fclose(f);
    if (bad) {
        s_why(why, whylen, "cannot read the certificate %s: %s", path, strerror(saved));
        return NULL;
    }
    if (n > CERT_MAX || memchr(text, '\0', n) != NULL) {
        s_why(why, whylen, "%s is not a CURVE certificate (binary, or larger than %d bytes)", path, CERT_MAX);
        return NULL;
    }
    text[n] = '\0';
    /* (a file without a key is not handed to the parser, which would complain on stderr) */
    zconfig_t *root = strstr(text, "public-key") != NULL ? zconfig_str_load(text) : NULL;
    const char *pub = root != NULL ? zconfig_get(root, "/curve/public-key", NULL) : NULL;
    const char *sec = root != NULL ? zconfig_get(root, "/curve/secret-key", NULL) : NULL;
    if (pub == NULL || strlen(pub) != XWS_CURVE_KEY_TXT) {
        s_why(why, whylen, "%s is not a CURVE certificate (no curve/public-key of 40 Z85 characters)", path);
        zconfig_destroy(&root);
        return NULL;
    }
    if (with_secret && (sec == NULL || strlen(sec) != XWS_CURVE_KEY_TXT || strcmp(sec, s_no_key) == 0)) {
        s_why(why, whylen, "%s holds no secret key (give the NAME.key_secret file)", path);
        zconfig_destroy(&root);
        return NULL;
    }
    uint8_t pub_bin[32], sec_bin[32];
    zcert_t *cert = NULL;
    if (zmq_z85_decode(pub_bin, pub) != NULL &&
        zmq_z85_decode(sec_bin, sec != NULL && strlen(sec) == XWS_CURVE_KEY_TXT ? sec : s_no_key) != NULL)
        cert = zcert_new_from(pub_bin, sec_bin);
    zconfig_t *meta = zconfig_locate(root, "metadata");
    for (zconfig_t *item = meta != NULL ? zconfig_child(meta) : NULL; cert != NULL && item != NULL; item = zconfig_next(item))
        zcert_set_meta(cert, zconfig_name(item), "%s", zconfig_value(item));
    zconfig_destroy(&root);
    if (cert == NULL)
        s_why(why, whylen, "%s holds a malformed key", path);
    return cert;
}

int xws_curve_client(zsock_t *sock, const char *own_cert, const char *server_cert, char *why, size_t whylen)
{
    assert(sock != NULL && own_cert != NULL && server_cert != NULL);
    if (!xws_curve_available()) {
        s_why(why, whylen, "this libzmq has no CURVE support (built without libsodium)");
        return -1;
    }
    zcert_t *own = xws_curve_load(own_cert, 1, why, whylen);
    if (own == NULL)
        return -1;
    zcert_t *server = xws_curve_load(server_cert, 0, why, whylen);
    if (server == NULL) {
        zcert_destroy(&own);
        return -1;
    }
    zcert_apply(own, sock);
    zsock_set_curve_serverkey(sock, zcert_public_txt(server));
    zcert_destroy(&own);
    zcert_destroy(&server);
    return 0;
}

int xws_curve_consumer_settings(xws_config_t *cfg, const char **own, const char **server, char *why, size_t whylen)
{
    assert(cfg != NULL && own != NULL && server != NULL);
    const char *o = xws_config_get(cfg, "curve_client_key", "");
    const char *g = xws_config_get(cfg, "curve_gateway_key", "");
    *own = *server = NULL;
    if (o[0] == '\0')
        return 0;
    if (g[0] == '\0' || strchr(g, ',') != NULL) {
        s_why(why, whylen, "setting curve_client_key needs curve_gateway_key, one gateway public certificate");
        return -1;
    }
    *own = o, *server = g;
    return 0;
}

int xws_curve_keygen(const char *dir, const char *name, int force, char *public_txt, char *why, size_t whylen)
{
    assert(dir != NULL && name != NULL);
    if (!xws_curve_name_ok(name)) {
        s_why(why, whylen, "the key name '%s' must be 1-64 characters of A-Z a-z 0-9 . _ - (not starting with .)", name);
        return -1;
    }
    if (!xws_curve_available()) {
        s_why(why, whylen, "this libzmq has no CURVE support (built without libsodium)");
        return -1;
    }
    char pub[4096], sec[4096 + 8];
    if ((size_t)snprintf(pub, sizeof(pub), "%s/%s.key", dir, name) >= sizeof(pub)) {
        s_why(why, whylen, "the directory path is too long");
        return -1;
    }
    snprintf(sec, sizeof(sec), "%s_secret", pub);
    struct stat st;
    const char *paths[] = {pub, sec};
    for (int i = 0; i < 2; i++) {
        if (lstat(paths[i], &st) == 0) {
            if (!force) {
                s_why(why, whylen, "%s exists (use --force to replace the pair)", paths[i]);
                return -1;
            }
            if (unlink(paths[i]) != 0) {
                s_why(why, whylen, "cannot replace %s: %s", paths[i], strerror(errno));
                return -1;
            }
        }
    }
    zcert_t *cert = zcert_new();
    if (cert == NULL) {
        s_why(why, whylen, "cannot make a key pair");
        return -1;
    }
    zcert_set_meta(cert, "name", "%s", name);
    /* files are created for their owner only; the public one is opened to others afterwards */
    mode_t old = umask(077);
    int rc = zcert_save_secret(cert, sec) == 0 && zcert_save_public(cert, pub) == 0 ? 0 : -1;
    umask(old);
    if (rc != 0) {
        s_why(why, whylen, "cannot write the key pair into %s: %s", dir, strerror(errno));
        unlink(sec);
        unlink(pub);
    } else if (chmod(sec, 0600) != 0 || chmod(pub, 0644) != 0) {
        s_why(why, whylen, "cannot set the modes of the key files: %s", strerror(errno));
        rc = -1;
    } else if (public_txt != NULL) {
        memcpy(public_txt, zcert_public_txt(cert), XWS_CURVE_KEY_TXT + 1);
    }
    zcert_destroy(&cert);
    return rc;
}

void xws_curve_test(void)
{
    if (!xws_curve_available()) {
        printf("# curve: this libzmq has no CURVE, skipped\n");
        return;
    }
    char dir[] = "/tmp/xws-curve-XXXXXX";
    XWS_CHECK(mkdtemp(dir) != NULL);
    char why[256], txt[XWS_CURVE_KEY_TXT + 1], txt2[XWS_CURVE_KEY_TXT + 1];
    XWS_CHECK(xws_curve_name_ok("worker-1.a_b") && !xws_curve_name_ok("") && !xws_curve_name_ok(".hidden"));
    XWS_CHECK(!xws_curve_name_ok("a/b") && !xws_curve_name_ok("a b"));
    XWS_CHECK(xws_curve_keygen(dir, "../x", 0, txt, why, sizeof(why)) == -1 && strstr(why, "key name") != NULL);
    XWS_CHECK(xws_curve_keygen(dir, "gw", 0, txt, why, sizeof(why)) == 0 && strlen(txt) == XWS_CURVE_KEY_TXT);
    /* no replacement by accident */
    XWS_CHECK(xws_curve_keygen(dir, "gw", 0, txt2, why, sizeof(why)) == -1 && strstr(why, "exists") != NULL);
    char pub[256], sec[256];
    snprintf(pub, sizeof(pub), "%s/gw.key", dir);
    snprintf(sec, sizeof(sec), "%s/gw.key_secret", dir);
    struct stat st;
    XWS_CHECK(stat(sec, &st) == 0 && (st.st_mode & 0777) == 0600);
    XWS_CHECK(stat(pub, &st) == 0 && (st.st_mode & 0777) == 0644);
    /* the public file has no secret; the secret file has both; the name is in the metadata */
    zcert_t *c = xws_curve_load(pub, 1, why, sizeof(why));
    XWS_CHECK(c == NULL && strstr(why, "no secret key") != NULL);
    c = xws_curve_load(pub, 0, why, sizeof(why));
    XWS_CHECK(c != NULL && strcmp(zcert_public_txt(c), txt) == 0 && streq(zcert_meta(c, "name"), "gw"));
    zcert_destroy(&c);
    c = xws_curve_load(sec, 1, why, sizeof(why));
    XWS_CHECK(c != NULL && strcmp(zcert_public_txt(c), txt) == 0 && strcmp(zcert_secret_txt(c), s_no_key) != 0);
    zcert_destroy(&c);
    XWS_CHECK(xws_curve_keygen(dir, "gw", 1, txt2, why, sizeof(why)) == 0 && strcmp(txt, txt2) != 0);
    /* unusable files are refused with the reason */
    char junk[256];
    snprintf(junk, sizeof(junk), "%s/junk", dir);
    FILE *f = fopen(junk, "w");
    XWS_CHECK(f != NULL && fputs("not a certificate\n", f) >= 0 && fclose(f) == 0);
    XWS_CHECK(xws_curve_load(junk, 0, why, sizeof(why)) == NULL && strstr(why, "not a CURVE certificate") != NULL);
    XWS_CHECK(xws_curve_load("/nonexistent/x.key", 0, why, sizeof(why)) == NULL && strstr(why, "cannot read") != NULL);
    zsock_t *s = zsock_new(ZMQ_DEALER);
    XWS_CHECK(s != NULL);
    XWS_CHECK(xws_curve_client(s, pub, pub, why, sizeof(why)) == -1 && strstr(why, "no secret key") != NULL);
    XWS_CHECK(xws_curve_client(s, sec, junk, why, sizeof(why)) == -1);
    XWS_CHECK(xws_curve_client(s, sec, pub, why, sizeof(why)) == 0);
    char *server = zsock_curve_serverkey(s);
    XWS_CHECK(server != NULL && strcmp(server, txt2) == 0);
    zstr_free(&server);
    zsock_destroy(&s);
    unlink(junk);
    unlink(pub);
    unlink(sec);
    XWS_CHECK(rmdir(dir) == 0);
}
