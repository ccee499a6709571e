/* daemon/cfgfile.h: reading the hall's config file (I/O at the edge: the
 * hall module parses text and never opens files). Used at start-up, by
 * config.reload and by SIGHUP. */
#ifndef HALLQ_CFGFILE_H
#define HALLQ_CFGFILE_H

#include "daemon/hall/config.h"

#include <stddef.h>

/* Reads and parses the file at `path`. Returns 0 with *out (the caller
 * frees it with hall_config_free), or -1 with a message in err that names
 * the file, and for a parse error the line. Warns (once per call) when the
 * file, which holds tokens, is readable by everyone. */
int cfgfile_load(const char *path, hall_config **out, char *err, size_t errlen);

/* Replaces *c (a config as read from the file) by its stored form, tokens
 * salted with the salt of `cur` (the config in force), or for a new hall
 * with one derived from its secret `key` (DATA/pii.key, random; see
 * hall_config_salt). What the WAL and the state get, and what is compared
 * with `cur` to tell an unchanged file. 0, or -1 with err set (*c
 * untouched). */
int cfgfile_stored(hall_config **c, const hall_config *cur, const uint8_t *key, size_t keylen,
                   char *err, size_t errlen);

/* The demo hall's tokens are public: a config that gives any of them
 * (hall_config_is_demo: the demo file or a copy of it) may listen on a
 * loopback TCP address only, unless `allow` (hallqd --demo). 0, or -1 with
 * a message in err saying why and what to do. `origin` names the config. */
int cfgfile_check_demo(const hall_config *c, const char *origin, const char *tcp_addr,
                       const char *http_addr, bool allow, char *err, size_t errlen);

#endif
