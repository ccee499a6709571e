/* tools/bench/text.c: the peers' durable enqueue, for bench/compare.sh.
 * Redis: `RPUSH hallq:LINE <payload>`, answered `:<list length>` (an
 * integer >= 1). beanstalkd: `use hallq-LINE` once per connection, then
 * `put 0 0 60 <bytes>`, answered `INSERTED <id>`. The payload is as large
 * as a hallq ticket.take request (opt.payload). */
#include "bench.h"

#include <string.h>

/* ---- Redis: RESP ---- */

static bool resp_next(bench *b, conn *c, pending *p, out *o)
{
    size_t kl = strlen("hallq:") + strlen(p->line);
    out_printf(o, "*3\r\n$5\r\nRPUSH\r\n$%zu\r\nhallq:%s\r\n$%zu\r\n", kl, p->line, b->opt.payload);
    out_payload(b, c, p, o);
    out_put(o, "\r\n", 2);
    return true;
}

/* An error is `-CODE message`; anything but `:N` (N >= 1) breaks the run. */
static ssize_t resp_parse(bench *b, conn *c, const pending *p, const uint8_t *buf, size_t n,
                          reply *r)
{
    (void)b;
    (void)c;
    (void)p;
    ssize_t len = text_line(buf, n, RBUF_TEXT, r);
    if (len <= 0)
        return len;
    const char *s = (const char *)buf;
    if (s[0] == '-') {
        set_code(r, s + 1, (size_t)len - 1);
        snprintf(r->text, sizeof r->text, "%.*s", (int)len - 1, s + 1);
        r->ok = false;
        return len + 2;
    }
    bool digits = s[0] == ':' && len > 1;
    for (ssize_t i = 1; digits && i < len; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (!digits || (len == 2 && s[1] == '0')) {
        snprintf(r->text, sizeof r->text, "RPUSH answered '%.*s'", (int)(len < 60 ? len : 60), s);
        return -1;
    }
    r->ok = true;
    return len + 2;
}

/* ---- beanstalk ---- */

static bool beanstalk_open(const bench *b, const conn *c, const pending *p, out *o)
{
    (void)b;
    (void)c;
    out_printf(o, "use hallq-%s\r\n", p->line);
    return true;
}

static bool beanstalk_next(bench *b, conn *c, pending *p, out *o)
{
    out_printf(o, "put 0 0 60 %zu\r\n", b->opt.payload);
    out_payload(b, c, p, o);
    out_put(o, "\r\n", 2);
    return true;
}

/* `use` answers `USING <tube>`, `put` answers `INSERTED <id>`; any other
 * line (BURIED, JOB_TOO_BIG, DRAINING, OUT_OF_MEMORY...) is an error whose
 * code is its first word. */
static ssize_t beanstalk_parse(bench *b, conn *c, const pending *p, const uint8_t *buf, size_t n,
                               reply *r)
{
    (void)b;
    (void)c;
    ssize_t len = text_line(buf, n, RBUF_TEXT, r);
    if (len <= 0)
        return len;
    const char *s = (const char *)buf;
    char want[48];
    if (p->open)
        snprintf(want, sizeof want, "USING hallq-%s", p->line);
    else
        snprintf(want, sizeof want, "INSERTED ");
    size_t wl = strlen(want);
    bool ok = p->open ? (size_t)len == wl && !memcmp(s, want, wl)
                      : (size_t)len > wl && !memcmp(s, want, wl);
    for (ssize_t i = (ssize_t)wl; ok && !p->open && i < len; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (!ok) {
        set_code(r, s, (size_t)len);
        snprintf(r->text, sizeof r->text, "%.*s", (int)len, s);
    }
    r->ok = ok;
    return len + 2;
}

const proto proto_resp = {"resp", NULL, resp_next, resp_parse};
const proto proto_beanstalk = {"beanstalk", beanstalk_open, beanstalk_next, beanstalk_parse};
