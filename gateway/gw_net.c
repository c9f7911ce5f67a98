/* gw_net.c - addresses and CIDR networks (see gw_net.h). */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "gw_check.h"
#include "gw_net.h"

int gw_net_parse(const char *s, size_t len, gw_net_t *net)
{
    assert(net != NULL);
    char text[64];
    if (s == NULL || len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL)
        return -1;
    char *slash = strchr(text, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        prefix = 0;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
    }
    memset(net, 0, sizeof(*net));
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        if (prefix > 32)
            return -1;
        net->addr[10] = net->addr[11] = 0xff;
        memcpy(net->addr + 12, &a4, 4);
        net->prefix = prefix < 0 ? 128 : (unsigned)(96 + prefix);
    } else if (inet_pton(AF_INET6, text, &a6) == 1) {
        if (prefix > 128)
            return -1;
        memcpy(net->addr, &a6, 16);
        net->prefix = prefix < 0 ? 128 : (unsigned)prefix;
    } else {
        return -1;
    }
    for (unsigned bit = net->prefix; bit < 128; bit++)
        net->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

int gw_net_contains(const gw_net_t *net, const uint8_t addr[16])
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff00u >> rest);
    return (net->addr[full] & mask) == (addr[full] & mask);
}

static const uint8_t s_v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int gw_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint8_t addr[16], char *text, size_t textlen)
{
    assert(textlen >= 48);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(addr, s_v4mapped, 12);
        memcpy(addr + 12, &s4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &s6->sin6_addr, 16);
    } else {
        snprintf(text, textlen, "unknown");
        memset(addr, 0, 16);
        return -1;
    }
    if (memcmp(addr, s_v4mapped, 12) == 0) { /* by hand: inet_ntop formats with sprintf, once per request */
        char *o = text;
        for (int i = 12; i < 16; i++) {
            unsigned v = addr[i];
            if (v >= 100)
                *o++ = (char)('0' + v / 100);
            if (v >= 10)
                *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 15 ? '.' : '\0';
        }
    } else
        inet_ntop(AF_INET6, addr, text, (socklen_t)textlen);
    return 0;
}

int gw_addr_is_private_ok(const uint8_t addr[16])
{
    static const uint8_t v6lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t v4lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    return memcmp(addr, v6lo, 16) == 0 || memcmp(addr, v4lo, 16) == 0;
}

/* ---- self-test -------------------------------------------------------------------------------- */

static void s_addr(const char *text, uint8_t out[16])
{
    gw_net_t n;
    GW_CHECK(gw_net_parse(text, strlen(text), &n) == 0 && n.prefix == 128);
    memcpy(out, n.addr, 16);
}

static int s_in(const char *net, const char *addr)
{
    gw_net_t n;
    uint8_t a[16];
    GW_CHECK(gw_net_parse(net, strlen(net), &n) == 0);
    s_addr(addr, a);
    return gw_net_contains(&n, a);
}

void gw_net_test(void)
{
    /* networks */
    GW_CHECK(s_in("10.0.0.0/8", "10.1.2.3") && !s_in("10.0.0.0/8", "11.0.0.1"));
    GW_CHECK(s_in("10.0.0.0/8", "::ffff:10.9.9.9"));
    GW_CHECK(s_in("192.168.1.77", "192.168.1.77") && !s_in("192.168.1.77", "192.168.1.78"));
    GW_CHECK(s_in("192.168.1.77/32", "192.168.1.77"));
    GW_CHECK(s_in("0.0.0.0/0", "1.2.3.4") && !s_in("0.0.0.0/0", "2001:db8::1"));
    GW_CHECK(s_in("2001:db8::/32", "2001:db8:1::5") && !s_in("2001:db8::/32", "2001:db9::5"));
    GW_CHECK(s_in("::1", "::1") && !s_in("::1", "127.0.0.1"));
    GW_CHECK(s_in("10.1.2.3/25", "10.1.2.127") && !s_in("10.1.2.3/25", "10.1.2.128"));
    gw_net_t n;
    GW_CHECK(gw_net_parse("10.0.0.0/33", 11, &n) == -1 && gw_net_parse("::/129", 6, &n) == -1);
    GW_CHECK(gw_net_parse("host.example", 12, &n) == -1 && gw_net_parse("1.2.3.4/", 8, &n) == -1);
    GW_CHECK(gw_net_parse("1.2.3.4/x", 9, &n) == -1 && gw_net_parse("", 0, &n) == -1);
    GW_CHECK(gw_net_parse("1.2.3.4/1234", 12, &n) == -1);

    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &s4.sin_addr);
    uint8_t a[16];
    char text[64];
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s4, sizeof(s4), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "127.0.0.1") == 0 && gw_addr_is_private_ok(a));
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "127.0.0.1") == 0 && gw_addr_is_private_ok(a));
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s6, sizeof(s6), a, text, sizeof(text)) == 0);
    GW_CHECK(strcmp(text, "::1") == 0 && gw_addr_is_private_ok(a));
    inet_pton(AF_INET, "127.0.0.2", &s4.sin_addr);
    GW_CHECK(gw_addr_from_sockaddr((struct sockaddr *)&s4, sizeof(s4), a, text, sizeof(text)) == 0);
    GW_CHECK(!gw_addr_is_private_ok(a));
}
