/* tools/hallq_watch.c: `hallq watch`, a live text board.
 *
 * It subscribes ({topics, since?} -> {seq}) and prints one line per pushed
 * event ({event, seq, data}), "10:32:05  A023 -> W05", or with --json the
 * whole event frame as one line of JSON. Events may come before the
 * subscribe answer (a replay with `since`), so one loop reads both. The
 * answer must come within the timeout; after it hallq waits for events
 * for ever, until --count events were printed (exit 0), the server closes
 * (exit 3) or a signal ends it. stdout is flushed after every line, so a
 * pipe sees each event as it happens. Each line prints the time of the
 * record that caused the event (its data's at_ms, protocol 1.2; a server
 * older than that sends none, and the time it arrived is printed). */
#include "tools/hallq.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void event_line(const msgpack_object *ev, const msgpack_object *name,
                       const msgpack_object *data)
{
    char t[40], a[64], b[64];
    int64_t at = hq_get_int(data, "at_ms", -1);
    if (at < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    hq_fmt_time(t, sizeof t, at, false);
    printf("%s  ", t);
    size_t nl = name->via.str.size;
    const char *n = name->via.str.ptr;
#define IS(s) (nl == strlen(s) && !memcmp(n, s, nl))
    if (IS("call"))
        printf("%s -> %s\n", hq_get_str(data, "number", a, sizeof a, "?"),
               hq_get_str(data, "window", b, sizeof b, "?"));
    else if (IS("line")) {
        char ln[200];
        hq_get_str(data, "line", a, sizeof a, "?");
        printf("line %s: %" PRId64 " waiting\n", hq_named(ln, sizeof ln, 'l', a),
               hq_get_int(data, "waiting", 0));
    } else if (IS("window"))
        printf("%s %s\n", hq_get_str(data, "window", a, sizeof a, "?"),
               hq_get_str(data, "state", b, sizeof b, "?"));
    else if (IS("case"))
        printf("case %s %s\n", hq_get_str(data, "case_no", a, sizeof a, "?"),
               hq_get_str(data, "state", b, sizeof b, "?"));
    else if (IS("deadline"))
        printf("case %s %s\n", hq_get_str(data, "case_no", a, sizeof a, "?"),
               hq_get_bool(data, "overdue")    ? "overdue"
               : hq_get_bool(data, "due_soon") ? "due soon"
                                               : hq_get_str(data, "mark", b, sizeof b, "deadline"));
    else {
        hq_text(stdout, n, (uint32_t)nl);
        fputs(" ", stdout);
        if (data)
            hq_json(stdout, data, false);
        fputc('\n', stdout);
    }
#undef IS
    (void)ev;
}

int hq_watch(const hq_opts *o, int ac, char **av)
{
    char topics[256] = "";
    const char *since = NULL;
    long long count = -1;
    for (int i = 1; i < ac; i++) {
        const char *w = av[i];
        if (!strcmp(w, "--since") || !strcmp(w, "--count")) {
            if (i + 1 >= ac || !hq_all_digits(av[i + 1]))
                return hq_usage_error("watch: %s needs a number", w);
            if (w[2] == 's')
                since = av[++i];
            else
                count = atoll(av[++i]);
            continue;
        }
        if (!strncmp(w, "--", 2))
            return hq_usage_error("watch: unknown option '%s'", w);
        if (strlen(topics) + strlen(w) + 2 > sizeof topics)
            return hq_usage_error("watch: too many topics");
        if (*topics)
            strcat(topics, ",");
        strcat(topics, w);
    }
    if (!*topics)
        strcpy(topics, "call,line,window"); /* the board's */
    if (count == 0)
        return HQ_EXIT_OK;

    hq_args a = {0};
    hq_args_add(&a, "topics", topics, HQ_T_LIST);
    if (since)
        hq_args_add(&a, "since", since, HQ_T_UINT);
    proto_buf b;
    proto_buf_init(&b);
    if (hq_args_pack(&a, &b)) {
        proto_buf_free(&b);
        return HQ_EXIT_ERROR;
    }
    hq_conn c;
    int rc = hq_connect(&c, o, hq_pick_role(o, hq_op_find("subscribe")));
    if (rc) {
        proto_buf_free(&b);
        return rc;
    }
    if (!o->json)
        hq_names_load(&c, o); /* before subscribing: events may come at once */
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t id;
    bool answered = false;
    long long printed = 0;
    if (proto_client_send(&c.pc, "subscribe", b.p, b.len, &id) != PROTO_OK) {
        fprintf(stderr, "hallq: subscribe: %s\n", c.pc.err.msg);
        rc = HQ_EXIT_CONNECT;
        goto out;
    }
    for (;;) {
        const msgpack_object *m;
        c.pc.timeout_ms = answered ? 0 : o->timeout_ms;
        if (proto_client_recv(&c.pc, &m) != PROTO_OK) {
            fprintf(stderr, "hallq: watch: %s\n", c.pc.err.msg);
            rc = HQ_EXIT_CONNECT;
            break;
        }
        const msgpack_object *ev = hq_get(m, "event");
        if (ev) {
            if (ev->type != MSGPACK_OBJECT_STR)
                continue;
            if (o->json) {
                hq_json(stdout, m, false);
                fputc('\n', stdout);
            } else {
                event_line(m, ev, hq_get(m, "data"));
            }
            if (fflush(stdout) != 0) {
                rc = HQ_EXIT_ERROR;
                break;
            }
            if (count > 0 && ++printed == count) {
                rc = HQ_EXIT_OK;
                break;
            }
            continue;
        }
        const msgpack_object *rid = hq_get(m, "id");
        const msgpack_object *ok = hq_get(m, "ok");
        if (!rid || rid->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !ok ||
            ok->type != MSGPACK_OBJECT_BOOLEAN ||
            (rid->via.u64 != id && !(rid->via.u64 == 0 && !ok->via.boolean)))
            continue;
        if (!ok->via.boolean) {
            const msgpack_object *e = hq_get(m, "error");
            char code[64], msg[256];
            fprintf(stderr, "hallq: subscribe: %s: %s\n",
                    hq_get_str(e, "code", code, sizeof code, "?"),
                    hq_get_str(e, "message", msg, sizeof msg, ""));
            rc = HQ_EXIT_ERROR;
            break;
        }
        answered = true;
        fprintf(stderr, "hallq: watching %s from seq %" PRId64 " (Ctrl-C ends)\n", topics,
                hq_get_int(hq_get(m, "result"), "seq", 0));
    }
out:
    hq_close(&c);
    proto_buf_free(&b);
    return rc;
}
