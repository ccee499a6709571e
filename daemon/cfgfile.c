/* daemon/cfgfile.c: reads the config file and hands its text to the
 * hall's parser. */
#include "daemon/cfgfile.h"
#include "daemon/log.h"
#include "wal/wal.h"

#include <arpa/inet.h>
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

int cfgfile_stored(hall_config **c, const hall_config *cur, const uint8_t *key, size_t keylen,
                   char *err, size_t errlen)
{
    uint8_t salt[HALL_TOKEN_SALT_LEN];
    hall_config *sc;
    hall_config_salt(cur, *c, key, keylen, salt);
    if (hall_config_stored(*c, salt, &sc, err, errlen) != 0)
        return -1;
    hall_config_free(*c);
    *c = sc;
    return 0;
}

/* Whether HOST:PORT names a loopback address (127.0.0.0/8, ::1, or
 * 127.0.0.0/8 mapped into IPv6); "localhost" is not an IP address to
 * hallqd, and 0.0.0.0 or :: is every interface. */
static bool loopback(const char *addr)
{
    char host[128];
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= sizeof host)
        return false;
    memcpy(host, addr, n);
    host[n] = 0;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = 0;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return false;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6.s6_addr, mapped, 12) == 0)
        return a6.s6_addr[12] == 127;
    return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
}

int cfgfile_check_demo(const hall_config *c, const char *origin, const char *tcp_addr,
                       const char *http_addr, bool allow, char *err, size_t errlen)
{
    if (allow || !hall_config_is_demo(c))
        return 0;
    const char *open_addr = !loopback(tcp_addr)                                 ? tcp_addr
                            : http_addr && http_addr[0] && !loopback(http_addr) ? http_addr
                                                                                : NULL;
    if (!open_addr)
        return 0;
    snprintf(err, errlen,
             "%s gives the demo hall's tokens, which are public (examples/demo-hall.yaml), and "
             "would listen on %s, which is not a loopback address: anyone on the network could "
             "act as any role. Give every token a secret of your own (e.g. 'openssl rand -hex "
             "24'), or listen on 127.0.0.1, or pass --demo to serve the demo hall anyway",
             origin, open_addr);
    return -1;
}
