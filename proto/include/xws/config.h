/*
 * xws/config.h - the one place settings come from: a "key = value" file (deploy/xws.conf
 * documents every key), each key overridable by the environment variable XWS_<KEY> (upper case).
 * Precedence: environment > file > built-in default.
 */
#ifndef XWS_CONFIG_H
#define XWS_CONFIG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xws_config xws_config_t;

/*
 * Loads path (NULL: the file named by $XWS_CONFIG, or none). A missing file named explicitly is
 * an error; lines are "key = value", '#' starts a comment, blank lines are skipped. Strict: a key
 * that is not a setting (deploy/xws.conf lists them) and an XWS_* environment variable that is
 * neither a setting nor one the scripts read are refused, with the closest setting's name.
 * Returns NULL with a message on stderr when the file cannot be read, a line is malformed or a
 * name is unknown.
 */
xws_config_t *xws_config_load(const char *path);
/* NULL-safe; sets *self_p to NULL. */
void xws_config_destroy(xws_config_t **self_p);

/*
 * The value of key: $XWS_<KEY> if set, else the file's value, else def (may be NULL). The
 * returned string is owned by the config (or is def) and lives as long as the config.
 * "${run_dir}" inside a value is replaced by the value of run_dir (itself default "./run").
 */
const char *xws_config_get(xws_config_t *self, const char *key, const char *def);
/* Where key's value comes from, for messages: "from the environment, XWS_KEY", "from FILE:LINE"
 * or "the built-in default"; written into buf, returned. */
const char *xws_config_source(xws_config_t *self, const char *key, char *buf, size_t size);
/* Same, parsed as a non-negative integer; def when unset; -1 (and a message) when malformed. */
long long xws_config_int(xws_config_t *self, const char *key, long long def);

void xws_config_test(void);

#ifdef __cplusplus
}
#endif
#endif
