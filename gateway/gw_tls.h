/*
 * gw_tls - the TLS context of the HTTPS listener: TLS 1.2 or newer, ALPN "h2" and "http/1.1", and
 * a self-signed certificate generated on first start when none is configured.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <openssl/ssl.h>

/* The TLS 1.2 suites offered by default: AEAD ciphers with forward secrecy (ECDHE) only. TLS 1.3
 * suites are all of that kind and keep OpenSSL's defaults. */
#define GW_TLS_CIPHERS_DEFAULT                                                                                                     \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Days a generated certificate is valid (the CA/Browser Forum's bound for server certificates). */
#define GW_TLS_CERT_DAYS 397

/* A generated certificate with fewer days left than this is replaced at start. */
#define GW_TLS_RENEW_DAYS 30

/*
 * Builds the server TLS context. cert and key: PEM files (NULL or "" both: use
 * <data_dir>/tls/cert.pem and key.pem, generating a self-signed EC P-256 pair there when both are
 * absent, or when that generated certificate has fewer than GW_TLS_RENEW_DAYS days left (the old
 * pair is kept as cert.pem.old and key.pem.old) — CN 127.0.0.1, SAN IP:127.0.0.1 and
 * DNS:localhost, valid GW_TLS_CERT_DAYS days, key file mode 0600). ciphers: the OpenSSL cipher
 * list of TLS 1.2 (NULL or "": GW_TLS_CIPHERS_DEFAULT). Returns the context, or NULL with the
 * reason on stderr.
 */
SSL_CTX *gw_tls_new(const char *cert, const char *key, const char *data_dir, const char *ciphers);

/*
 * Writes a fresh self-signed EC P-256 certificate and key to cert_path and key_path (the key with
 * mode 0600; neither file may exist). Returns 0, or -1 with the reason on stderr.
 */
int gw_tls_generate(const char *cert_path, const char *key_path);

/* Self-test: generates a pair in a temporary directory and loads it. Aborts on failure. */
void gw_tls_test(void);

#endif
