/* gw_tls.c - TLS context and self-signed certificate (see gw_tls.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif
#include <h2o.h>
#include <h2o/http2.h>
#include "xws/log.h"
#include "gw_check.h"
#include "gw_tls.h"

static void s_ssl_error(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    xws_log(XWS_LOG_INFO, "%s: %s", what, e != 0 ? buf : "unknown TLS error");
    ERR_clear_error();
}

/* mkdir -p with mode for the created directories */
static int s_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) {
                xws_log(XWS_LOG_ERROR, "cannot create directory %s: %s", buf, strerror(errno));
                return -1;
            }
            buf[i] = c;
        }
    }
    return 0;
}

static int s_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

int gw_tls_generate(const char *cert_path, const char *key_path)
{
    int rc = -1, kfd = -1, cfd = -1;
    FILE *kf = NULL, *cf = NULL;
    X509 *x = NULL;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (pkey == NULL) {
        s_ssl_error("cannot generate an EC P-256 key");
        goto done;
    }
    if ((x = X509_new()) == NULL)
        abort();
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        abort();
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        abort();
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)GW_TLS_CERT_DAYS * 24 * 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (s_add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") != 0 ||
        s_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        s_add_ext(x, NID_key_usage, "critical,digitalSignature") != 0 || s_add_ext(x, NID_ext_key_usage, "serverAuth") != 0) {
        s_ssl_error("cannot build the certificate extensions");
        goto done;
    }
    if (X509_sign(x, pkey, EVP_sha256()) == 0) {
        s_ssl_error("cannot sign the certificate");
        goto done;
    }
    if ((kfd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 || (kf = fdopen(kfd, "w")) == NULL) {
        xws_log(XWS_LOG_ERROR, "cannot create %s: %s", key_path, strerror(errno));
        goto done;
    }
    kfd = -1;
    if (PEM_write_PrivateKey(kf, pkey, NULL, NULL, 0, NULL, NULL) != 1 || fclose(kf) != 0) {
        kf = NULL;
        xws_log(XWS_LOG_ERROR, "cannot write %s", key_path);
        goto done;
    }
    kf = NULL;
    if ((cfd = open(cert_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 || (cf = fdopen(cfd, "w")) == NULL) {
        xws_log(XWS_LOG_ERROR, "cannot create %s: %s", cert_path, strerror(errno));
        goto done;
    }
    cfd = -1;
    if (PEM_write_X509(cf, x) != 1 || fclose(cf) != 0) {
        cf = NULL;
        xws_log(XWS_LOG_ERROR, "cannot write %s", cert_path);
        goto done;
    }
    cf = NULL;
    rc = 0;
done:
    if (kf != NULL)
        fclose(kf);
    if (cf != NULL)
        fclose(cf);
    if (kfd >= 0)
        close(kfd);
    if (cfd >= 0)
        close(cfd);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

/* 1 when the certificate in path ends within days (or cannot be read), else 0. */
static int s_expires_within(const char *path, int days)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        ERR_clear_error();
        return 1;
    }
    time_t at = time(NULL) + (time_t)days * 24 * 3600;
    int ends = X509_cmp_time(X509_get0_notAfter(x), &at) <= 0;
    X509_free(x);
    return ends;
}

/* Moves path to path.old (replacing an older one); 0 or -1 (reason on stderr). */
static int s_keep_old(const char *path)
{
    char old[4200];
    if ((size_t)snprintf(old, sizeof(old), "%s.old", path) >= sizeof(old) || rename(path, old) != 0) {
        xws_log(XWS_LOG_ERROR, "cannot move %s aside: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* gw_tls_new, replacing a generated certificate with fewer than renew_days days left */
static SSL_CTX *s_tls_new(const char *cert, const char *key, const char *data_dir, const char *ciphers, int renew_days)
{
    char cbuf[4096], kbuf[4096];
    int have_cert = cert != NULL && *cert != '\0', have_key = key != NULL && *key != '\0';
    if (have_cert != have_key) {
        xws_log(XWS_LOG_ERROR, "tls_cert and tls_key must be set together");
        return NULL;
    }
    if (!have_cert) {
        char dir[4096];
        if ((size_t)snprintf(dir, sizeof(dir), "%s/tls", data_dir) >= sizeof(dir) ||
            (size_t)snprintf(cbuf, sizeof(cbuf), "%s/cert.pem", dir) >= sizeof(cbuf) ||
            (size_t)snprintf(kbuf, sizeof(kbuf), "%s/key.pem", dir) >= sizeof(kbuf)) {
            xws_log(XWS_LOG_ERROR, "data_dir is too long");
            return NULL;
        }
        cert = cbuf, key = kbuf;
        int c_exists = access(cert, F_OK) == 0, k_exists = access(key, F_OK) == 0;
        if (c_exists && k_exists && s_expires_within(cert, renew_days)) {
            if (s_keep_old(cert) != 0 || s_keep_old(key) != 0)
                return NULL;
            c_exists = k_exists = 0;
            xws_log(XWS_LOG_INFO, "the generated certificate in %s ends within %d days: replacing it", dir, renew_days);
        }
        if (!c_exists && !k_exists) {
            if (s_mkdirs(dir, 0700) != 0 || gw_tls_generate(cert, key) != 0)
                return NULL;
            xws_log(XWS_LOG_INFO, "generated a self-signed certificate in %s", dir);
        } else if (!c_exists || !k_exists) {
            xws_log(XWS_LOG_ERROR, "%s exists but %s does not; remove the other or provide both", c_exists ? cert : key,
                    c_exists ? key : cert);
            return NULL;
        }
    }
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    if (ssl == NULL) {
        s_ssl_error("cannot create the TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    if (ciphers == NULL || *ciphers == '\0')
        ciphers = GW_TLS_CIPHERS_DEFAULT;
    if (SSL_CTX_set_cipher_list(ssl, ciphers) != 1) {
        xws_log(XWS_LOG_ERROR, "tls_ciphers = %s names no cipher suite OpenSSL knows", ciphers);
        s_ssl_error("tls_ciphers");
        SSL_CTX_free(ssl);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        xws_log(XWS_LOG_ERROR, "cannot load the certificate %s", cert);
        s_ssl_error("certificate");
        SSL_CTX_free(ssl);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ssl) != 1) {
        xws_log(XWS_LOG_ERROR, "cannot load the private key %s (or it does not match the certificate)", key);
        s_ssl_error("private key");
        SSL_CTX_free(ssl);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ssl, h2o_http2_alpn_protocols); /* "h2", then "http/1.1" */
    return ssl;
}

SSL_CTX *gw_tls_new(const char *cert, const char *key, const char *data_dir, const char *ciphers)
{
    return s_tls_new(cert, key, data_dir, ciphers, GW_TLS_RENEW_DAYS);
}

void gw_tls_test(void)
{
    char dir[] = "/tmp/gw-tls-test-XXXXXX";
    GW_CHECK(mkdtemp(dir) != NULL);
    char sub[128], cert[160], key[160];
    snprintf(sub, sizeof(sub), "%s/data", dir);
    SSL_CTX *ssl = gw_tls_new(NULL, NULL, sub, NULL);
    GW_CHECK(ssl != NULL);
    SSL_CTX_free(ssl);
    snprintf(cert, sizeof(cert), "%s/tls/cert.pem", sub);
    snprintf(key, sizeof(key), "%s/tls/key.pem", sub);
    struct stat st;
    GW_CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    GW_CHECK(gw_tls_generate(cert, key) == -1); /* never overwrites */
    /* valid GW_TLS_CERT_DAYS days: not within 30 days of its end, within 398 */
    GW_CHECK(!s_expires_within(cert, GW_TLS_RENEW_DAYS) && !s_expires_within(cert, GW_TLS_CERT_DAYS - 1));
    GW_CHECK(s_expires_within(cert, GW_TLS_CERT_DAYS + 1) && s_expires_within("/nonexistent", 1));
    GW_CHECK(gw_tls_new(NULL, NULL, sub, "NO-SUCH-CIPHER") == NULL);
    /* a generated pair near its end is replaced; the old one is kept aside */
    ssl = s_tls_new(NULL, NULL, sub, NULL, GW_TLS_CERT_DAYS + 1);
    GW_CHECK(ssl != NULL);
    SSL_CTX_free(ssl);
    char oldc[170], oldk[170];
    snprintf(oldc, sizeof(oldc), "%s.old", cert);
    snprintf(oldk, sizeof(oldk), "%s.old", key);
    GW_CHECK(access(oldc, F_OK) == 0 && access(oldk, F_OK) == 0 && access(cert, F_OK) == 0 && access(key, F_OK) == 0);
    unlink(oldc);
    unlink(oldk);
    ssl = gw_tls_new(NULL, "", sub, ""); /* second start: loads the existing pair */
    GW_CHECK(ssl != NULL);
    SSL_CTX_free(ssl);
    ssl = gw_tls_new(cert, key, "/nonexistent", "ECDHE-ECDSA-AES128-SHA");
    GW_CHECK(ssl != NULL);
    SSL_CTX_free(ssl);
    GW_CHECK(gw_tls_new(cert, NULL, sub, NULL) == NULL);
    GW_CHECK(gw_tls_new(key, cert, sub, NULL) == NULL);
    unlink(key);
    GW_CHECK(gw_tls_new(NULL, NULL, sub, NULL) == NULL); /* half a pair is refused */
    unlink(cert);
    char tlsdir[160];
    snprintf(tlsdir, sizeof(tlsdir), "%s/tls", sub);
    rmdir(tlsdir);
    rmdir(sub);
    rmdir(dir);
}
