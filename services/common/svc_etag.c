/* svc_etag.c - see svc_etag.h */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc_etag.h"
#include "svc_mp.h"
#include "svc_util.h"

/* feeds a length-prefixed field, so that ("ab","c") and ("a","bc") differ */
static void s_feed(EVP_MD_CTX *md, const char *p, size_t len)
{
    unsigned char l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (unsigned char)(len >> (8 * i));
    EVP_DigestUpdate(md, l, sizeof(l));
    if (len > 0)
        EVP_DigestUpdate(md, p, len);
}

static int s_cmp_kv(const void *a, const void *b)
{
    const msgpack_object_kv *x = *(const msgpack_object_kv *const *)a, *y = *(const msgpack_object_kv *const *)b;
    size_t n = x->key.via.str.size < y->key.via.str.size ? x->key.via.str.size : y->key.via.str.size;
    int c = n > 0 ? memcmp(x->key.via.str.ptr, y->key.via.str.ptr, n) : 0;
    if (c != 0)
        return c;
    return x->key.via.str.size < y->key.via.str.size ? -1 : x->key.via.str.size > y->key.via.str.size;
}

/* SHA-256, fetched once for the process (an implicit fetch by EVP_sha256() costs a lookup per digest) */
static EVP_MD *s_sha256;

static void s_sha256_fetch(void)
{
    s_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void svc_etag_compute(const char *prefix, const char *service, const char *resource, const char *act,
                      const msgpack_object_map *params, const char *epoch, const long long *vers, size_t n, char out[SVC_ETAG_SIZE])
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, s_sha256_fetch);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || s_sha256 == NULL || EVP_DigestInit_ex(md, s_sha256, NULL) != 1)
        abort();
    s_feed(md, "xws-etag-1", 10);
    const char *parts[] = {prefix, service, resource, act, epoch};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        s_feed(md, parts[i] ? parts[i] : "", parts[i] ? strlen(parts[i]) : 0);
    size_t np = 0;
    const msgpack_object_kv **kv = NULL;
    if (params != NULL && params->size > 0) {
        kv = svc_calloc(params->size, sizeof(*kv));
        for (uint32_t i = 0; i < params->size; i++) {
            const msgpack_object_kv *p = &params->ptr[i];
            if (p->key.type != MSGPACK_OBJECT_STR || p->val.type != MSGPACK_OBJECT_STR)
                continue;
            if (p->key.via.str.size == 3 && memcmp(p->key.via.str.ptr, "sum", 3) == 0)
                continue;
            kv[np++] = p;
        }
        qsort(kv, np, sizeof(*kv), s_cmp_kv);
    }
    char num[32];
    snprintf(num, sizeof(num), "%zu", np);
    s_feed(md, num, strlen(num));
    for (size_t i = 0; i < np; i++) {
        s_feed(md, kv[i]->key.via.str.ptr, kv[i]->key.via.str.size);
        s_feed(md, kv[i]->val.via.str.ptr, kv[i]->val.via.str.size);
    }
    free(kv);
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%lld", vers[i]);
        s_feed(md, num, strlen(num));
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen < 16)
        abort();
    EVP_MD_CTX_free(md);
    out[0] = '"';
    svc_hex(digest, 16, out + 1);
    out[33] = '"';
    out[34] = '\0';
}

static void s_params(msgpack_sbuffer *sb, int n, const char *const *kv)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, svc_mp_write);
    msgpack_pack_map(&pk, (size_t)n);
    for (int i = 0; i < 2 * n; i++) {
        msgpack_pack_str(&pk, strlen(kv[i]));
        msgpack_pack_str_body(&pk, kv[i], strlen(kv[i]));
    }
}

void svc_etag_test(void)
{
    char a[SVC_ETAG_SIZE], b[SVC_ETAG_SIZE];
    long long v1[] = {1, 2}, v2[] = {1, 3};
    svc_etag_compute("xws:", "config", "entity", "list", NULL, "e", v1, 2, a);
    XWS_CHECK(strlen(a) == 34 && a[0] == '"' && a[33] == '"');
    svc_etag_compute("xws:", "config", "entity", "list", NULL, "e", v1, 2, b);
    XWS_CHECK(strcmp(a, b) == 0); /* deterministic */
    svc_etag_compute("xws:", "config", "entity", "list", NULL, "e", v2, 2, b);
    XWS_CHECK(strcmp(a, b) != 0); /* a version changed */
    svc_etag_compute("xws:", "config", "entity", "list", NULL, "f", v1, 2, b);
    XWS_CHECK(strcmp(a, b) != 0); /* another epoch */
    svc_etag_compute("xws:", "config", "entity", "search", NULL, "e", v1, 2, b);
    XWS_CHECK(strcmp(a, b) != 0); /* another act */

    /* parameters: order does not matter, values do, "sum" is ignored */
    msgpack_sbuffer s1, s2, s3;
    msgpack_sbuffer_init(&s1), msgpack_sbuffer_init(&s2), msgpack_sbuffer_init(&s3);
    const char *p1[] = {"id", "1", "search", "x"}, *p2[] = {"search", "x", "id", "1", "sum", "abc"},
               *p3[] = {"id", "2", "search", "x"};
    s_params(&s1, 2, p1), s_params(&s2, 3, p2), s_params(&s3, 2, p3);
    msgpack_unpacked u1, u2, u3;
    XWS_CHECK(svc_mp_unpack(&u1, s1.data, s1.size) == 0 && svc_mp_unpack(&u2, s2.data, s2.size) == 0 &&
              svc_mp_unpack(&u3, s3.data, s3.size) == 0);
    char c1[SVC_ETAG_SIZE], c2[SVC_ETAG_SIZE], c3[SVC_ETAG_SIZE];
    svc_etag_compute("xws:", "config", "entity", "view", &u1.data.via.map, "e", v1, 1, c1);
    svc_etag_compute("xws:", "config", "entity", "view", &u2.data.via.map, "e", v1, 1, c2);
    svc_etag_compute("xws:", "config", "entity", "view", &u3.data.via.map, "e", v1, 1, c3);
    XWS_CHECK(strcmp(c1, c2) == 0);
    XWS_CHECK(strcmp(c1, c3) != 0);
    msgpack_unpacked_destroy(&u1), msgpack_unpacked_destroy(&u2), msgpack_unpacked_destroy(&u3);
    msgpack_sbuffer_destroy(&s1), msgpack_sbuffer_destroy(&s2), msgpack_sbuffer_destroy(&s3);
}
