/*
 * gw_tls - the TLS context of the HTTPS listener: TLS 1.2 or newer, ALPN "h2" and "http/1.1", and
 * a self-signed certificate generated on first start when none is configured.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <openssl/ssl.h>

/*
 * Builds the server TLS context. cert and key: PEM files (NULL or "" both: use
 * <data_dir>/tls/cert.pem and key.pem, generating a self-signed EC P-256 pair there when both are
 * absent — CN 127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost, valid 10 years, key file mode 0600).
 * Returns the context, or NULL with the reason on stderr.
 */
SSL_CTX *gw_tls_new(const char *cert, const char *key, const char *data_dir);

/*
 * Writes a fresh self-signed EC P-256 certificate and key to cert_path and key_path (the key with
 * mode 0600; neither file may exist). Returns 0, or -1 with the reason on stderr.
 */
int gw_tls_generate(const char *cert_path, const char *key_path);

/* Self-test: generates a pair in a temporary directory and loads it. Aborts on failure. */
void gw_tls_test(void);

#endif
