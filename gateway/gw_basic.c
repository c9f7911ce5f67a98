/* gw_basic.c - HTTP Basic credentials (see gw_basic.h). */
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "gw_basic.h"
#include "gw_check.h"

static int s_b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 with optional padding; returns the decoded length or -1. */
static long s_b64decode(const char *s, size_t n, unsigned char *out, size_t outsize)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = s_b64val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outsize)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}

int gw_basic_parse(const char *hdr, size_t len, char *login, size_t lsize, char *password, size_t psize)
{
    if (hdr == NULL || len == 0)
        return 0;
    while (len > 0 && (*hdr == ' ' || *hdr == '\t'))
        hdr++, len--;
    while (len > 0 && (hdr[len - 1] == ' ' || hdr[len - 1] == '\t'))
        len--;
    if (len < 6 || strncasecmp(hdr, "basic", 5) != 0 || (hdr[5] != ' ' && hdr[5] != '\t'))
        return -1;
    hdr += 6, len -= 6;
    while (len > 0 && (*hdr == ' ' || *hdr == '\t'))
        hdr++, len--;
    unsigned char dec[2560]; /* a login (up to 1024 bytes), ':', a password (up to 1024 bytes) */
    long n = s_b64decode(hdr, len, dec, sizeof(dec));
    if (n < 0 || memchr(dec, '\0', (size_t)n) != NULL)
        return -1;
    unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return -1;
    size_t ll = (size_t)(colon - dec), pl = (size_t)n - ll - 1;
    if (ll >= lsize || pl >= psize)
        return -1;
    memcpy(login, dec, ll);
    login[ll] = '\0';
    memcpy(password, colon + 1, pl);
    password[pl] = '\0';
    OPENSSL_cleanse(dec, sizeof(dec));
    return 1;
}

/* ---- self-test -------------------------------------------------------------------------------- */

void gw_basic_test(void)
{
    /* Basic */
    char login[64], pw[64];
    GW_CHECK(gw_basic_parse(NULL, 0, login, sizeof(login), pw, sizeof(pw)) == 0);
    GW_CHECK(gw_basic_parse("Basic YWRtaW46c2VjcmV0", 22, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(strcmp(login, "admin") == 0 && strcmp(pw, "secret") == 0);
    GW_CHECK(gw_basic_parse("basic  YTpiOmM=", 15, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(strcmp(login, "a") == 0 && strcmp(pw, "b:c") == 0);
    GW_CHECK(gw_basic_parse("Basic Og==", 10, login, sizeof(login), pw, sizeof(pw)) == 1);
    GW_CHECK(login[0] == '\0' && pw[0] == '\0');
    GW_CHECK(gw_basic_parse("Bearer abc", 10, login, sizeof(login), pw, sizeof(pw)) == -1);
    GW_CHECK(gw_basic_parse("Basic YWRtaW4=", 14, login, sizeof(login), pw, sizeof(pw)) == -1); /* no ':' */
    GW_CHECK(gw_basic_parse("Basic !!!", 9, login, sizeof(login), pw, sizeof(pw)) == -1);
    GW_CHECK(gw_basic_parse("Basic YQBiOmM=", 14, login, sizeof(login), pw, sizeof(pw)) == -1); /* NUL */
    GW_CHECK(gw_basic_parse("Basic", 5, login, sizeof(login), pw, sizeof(pw)) == -1);
}
