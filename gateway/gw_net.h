/*
 * gw_net - IPv4/IPv6 addresses and CIDR networks. IPv4 is held as IPv4-mapped IPv6, so a client at
 * ::ffff:a.b.c.d matches IPv4 entries. Pure functions: no state, no I/O, no allocation.
 */
#ifndef GW_NET_H
#define GW_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint8_t addr[16]; /* IPv6, or IPv4-mapped IPv6 (::ffff:a.b.c.d) */
    unsigned prefix;  /* 0-128 bits */
} gw_net_t;

/*
 * Parses "a.b.c.d", "a.b.c.d/n" (0-32), an IPv6 address or "v6/n" (0-128) into *net; bits beyond
 * the prefix are cleared. Returns 0, or -1 for anything else (host names are not resolved).
 */
int gw_net_parse(const char *s, size_t len, gw_net_t *net);

/* 1 when the 16-byte address lies inside net, else 0. */
int gw_net_contains(const gw_net_t *net, const uint8_t addr[16]);

/*
 * Turns a peer address into the 16-byte form (IPv4 → IPv4-mapped) and its text (IPv4-mapped IPv6
 * is written as plain IPv4), text of at least 48 bytes. Returns 0, or -1 for another family.
 */
int gw_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint8_t addr[16], char *text, size_t textlen);

/* 1 for 127.0.0.1, ::1 and ::ffff:127.0.0.1, else 0 (private mode). */
int gw_addr_is_private_ok(const uint8_t addr[16]);

/* Self-test: silent on success, aborts on failure. */
void gw_net_test(void);

#endif
