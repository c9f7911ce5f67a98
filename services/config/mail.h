/*
 * mail - the `mail` resource of the config service (spec §4.2, path network/mail): the mail
 * settings singleton (id 1): mydomain, origin, relayhost, fallback_relayhost and the canonical
 * rewriting rules.
 *
 * Redis keys (under the prefix): `mail:data` (string: the msgpack map of the stored settings,
 * absent until the first edit) and `ver:mail` (version counter). Writes go through the Lua
 * function `config_mail_edit` (lua/mail.lua).
 */
#ifndef MAIL_H
#define MAIL_H

#include <stddef.h>
#include "svc_ctx.h"
#include "svc_worker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The resource as registered in the service's resource table (default act: view). */
extern const svc_resource_t cfg_mail_resource;

/*
 * act=view (the default act): answers 200 {"id": 1, "mydomain", "origin", "relayhost",
 * "fallback_relayhost", "canonical": [{"pattern", "result"}...]} with an ETag (304 when it
 * matches If-None-Match). A store where mail was never written answers the fresh-install values.
 * Returns 0, or -1 with an error reply set.
 */
int mail_view(svc_ctx_t *ctx);

/*
 * act=edit: validates the body (all four scalar keys required, canonical optional) and replaces
 * the whole object atomically, de-duplicated by request id. 200 with an empty body, or 400 with
 * the offending field. Returns 0, or -1 with an error reply set.
 */
int mail_edit(svc_ctx_t *ctx);

/*
 * Syntax checks, the common validators of svc_field.h (svc_check_host, svc_check_ip,
 * svc_check_relay) as the mail settings use them; kept for the self-test:
 * 1 when s/len is valid, else 0.
 *   mail_is_hostname: RFC 1123 host name (labels of [A-Za-z0-9-], 1-63 bytes, no leading or
 *     trailing '-', at most 253 bytes, no trailing dot; a name whose last label is all digits
 *     must be an IPv4 address instead).
 *   mail_is_ip: an IPv4 (dotted quad) or IPv6 address.
 *   mail_is_relay: a relay host for Postfix: a host name or IPv4 address, or "[" IPv6 address,
 *     IPv4 address or host name "]", optionally followed by ":port" (1-65535).
 */
int mail_is_hostname(const char *s, size_t len);
int mail_is_ip(const char *s, size_t len);
int mail_is_relay(const char *s, size_t len);

/* Self-test of the validators (no Redis needed). */
void mail_test(void);

#ifdef __cplusplus
}
#endif
#endif
