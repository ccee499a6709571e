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

#endif
