/* daemon/cfgfile.c: reads the config file and hands its text to the
 * hall's parser. */
#include "daemon/cfgfile.h"
#include "daemon/log.h"
#include "wal/wal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_BYTES (4u << 20) /* a config is a few KiB; this is a bound, not a target */

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        char *nb = cap < CONFIG_MAX_BYTES ? realloc(buf, cap *= 2) : NULL;
        if (!nb) {
            free(buf);
            buf = NULL;
            snprintf(err, errlen, "%s: too large or out of memory", path);
        }
        buf = nb;
    }
    if (buf && ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int cfgfile_load(const char *path, hall_config **out, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return -1;
    int rc = hall_config_parse(text, len, path, out, err, errlen);
    free(text);
    if (rc != 0)
        return -1;
    if (hall_config_check_records(*out, path, WAL_SEGMENT_HEADER_LEN, WAL_RECORD_OVERHEAD,
                                  WAL_MAX_PAYLOAD, err, errlen) != 0) {
        hall_config_free(*out);
        *out = NULL;
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
        hq_log(HQ_LOG_WARN, "config %s holds tokens and is readable by everyone (chmod o-r)", path);
    return 0;
}
