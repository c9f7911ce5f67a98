/*
 * config_int.h - the parts of the config service (xws-config) and how they meet: the entity and
 * account resources, the account store shared by the account resource and the command-line
 * tool, and the tool's entry point.
 */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include <stddef.h>
#include "svc.h"

/* The resources of the service (see README.md beside this file). */
extern const svc_resource_t cfg_entity_resource;
extern const svc_resource_t cfg_account_resource; /* snapshot (the data service) */
extern const svc_resource_t cfg_verify_resource;  /* verify (the "verify" pool, main.c) */
/* The function library (prelude + lua/config.lua), embedded at build time. */
extern const char cfg_lua[];

/* ---- accounts ------------------------------------------------------------------------------------- */

#define CFG_PBKDF2_ITERATIONS 100000
#define CFG_SALT_BYTES 16
#define CFG_HASH_BYTES 32

/* One web-service account as stored in <prefix>account:data (a msgpack map). */
typedef struct {
    char *name;     /* 1-64 of [A-Za-z0-9_.-] */
    char *login;    /* "" for a host-only account */
    char *password; /* "pbkdf2-sha256$<iter>$<salt hex>$<hash hex>", or "" */
    char **hosts;   /* addresses or CIDR networks, canonical text */
    size_t nhosts;
    char **acl; /* path prefixes, or "*" */
    size_t nacl;
    int disabled;      /* 1: never authenticates */
    char *description; /* free text */
} cfg_account_t;

/* Frees the members of a (the struct itself is the caller's); zeroes it. */
void cfg_account_dispose(cfg_account_t *a);
/* Decodes a stored record into a (zeroed by the call). 0, or -1 when malformed. */
int cfg_account_decode(cfg_account_t *a, const char *data, size_t len);
/* Packs the stored form of a. */
void cfg_account_encode(const cfg_account_t *a, msgpack_packer *pk);
/* Packs the public form (snapshot element: no password material). */
void cfg_account_render(const cfg_account_t *a, msgpack_packer *pk, int with_description);
/* Appends a copy of s to a list. */
void cfg_list_add(char ***list, size_t *n, const char *s);

/* Validation: 0 when valid, else -1 with *why set to a static sentence. */
int cfg_check_account_name(const char *s, const char **why);
int cfg_check_login(const char *s, const char **why);
int cfg_check_acl(const char *s, const char **why);
int cfg_check_password(const char *s, const char **why);
/* Validates an address or CIDR network and writes its canonical text to out (≥ 64 bytes). */
int cfg_normalise_host(const char *s, char *out, size_t outlen, const char **why);

/* The salted slow hash of a password (PBKDF2-HMAC-SHA256, random 16-byte salt), into out (≥ 160 bytes). */
void cfg_password_hash(const char *password, size_t len, char *out, size_t outlen);
/* 1 when password matches stored (compared in constant time), else 0 (also for a malformed stored hash). */
int cfg_password_verify(const char *password, size_t len, const char *stored);

/*
 * Reads every account and the account version atomically (sorted by name). On success returns
 * 0 with *list (n entries, free with cfg_accounts_free) and *version; -1 with the reply set.
 */
int cfg_accounts_load(svc_ctx_t *ctx, cfg_account_t **list, size_t *n, long long *version);
void cfg_accounts_free(cfg_account_t *list, size_t n);

/*
 * The command-line tool: argv[0] is the program, argv[1] "account"; cfg_path the -c file or NULL.
 * Returns the exit status (0 ok, 1 error, 2 usage).
 */
int cfg_account_cli(const char *cfg_path, int argc, char **argv);

void cfg_account_test(void);

#endif
