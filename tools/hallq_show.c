/* tools/hallq_show.c: readable renderings of the results a clerk, a kiosk
 * tester or an operator looks at.
 *
 * Each renderer prints what the result says in a line or a small table,
 * and never hides a figure of `stats`: its tables take their columns from
 * the keys the server sent, so a figure added to the daemon shows up here
 * without a change. Scripts use --json, which prints the result map
 * whole. Times are shown in the local time zone (set TZ to the hall's). */
#include "tools/hallq.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* A duration of s seconds: "45s", "12m05s", "2h03m". */
static const char *dur(char *buf, size_t n, int64_t s)
{
    if (s < 60)
        snprintf(buf, n, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    return buf;
}

static const char *time_at(char *buf, size_t n, const msgpack_object *m, const char *key)
{
    const msgpack_object *v = hq_get(m, key);
    if (!v || (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
               v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        snprintf(buf, n, "-");
        return buf;
    }
    hq_fmt_time(buf, n, hq_get_int(m, key, 0), true);
    return buf;
}

void hq_show_generic_render(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    hq_show_generic(r);
}

void hq_show_ping(const hq_conn *c, const msgpack_object *r)
{
    char t[40];
    printf("pong: server time %s, connected as %s %s\n", time_at(t, sizeof t, r, "now_ms"),
           hq_role_name(c->role), c->id);
}

void hq_show_ticket_take(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char num[32], id[64], line[32], d[32], ln[200];
    hq_get_str(r, "line", line, sizeof line, "?");
    printf("%s  ticket %s, line %s: %" PRId64 " ahead, about %s wait\n",
           hq_get_str(r, "number", num, sizeof num, "?"),
           hq_get_str(r, "ticket_id", id, sizeof id, "?"), hq_named(ln, sizeof ln, 'l', line),
           hq_get_int(r, "ahead", 0), dur(d, sizeof d, hq_get_int(r, "est_wait_s", 0)));
}

/* One ticket map (ticket.get, window.call). */
static void ticket_line(const msgpack_object *t, const char *suffix)
{
    char num[32], id[64], line[32], state[32], win[32], ln[200];
    hq_get_str(t, "number", num, sizeof num, "?");
    hq_get_str(t, "ticket_id", id, sizeof id, "?");
    hq_get_str(t, "line", line, sizeof line, "?");
    hq_get_str(t, "state", state, sizeof state, "?");
    const char *w = hq_get_str(t, "window", win, sizeof win, NULL);
    printf("%s  ticket %s, line %s: %s", num, id, hq_named(ln, sizeof ln, 'l', line), state);
    if (hq_get(t, "ahead"))
        printf(", %" PRId64 " ahead", hq_get_int(t, "ahead", 0));
    if (w)
        printf(" at %s", w);
    printf("%s\n", suffix);
}

void hq_show_ticket(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    ticket_line(r, "");
}

void hq_show_ticket_return(const hq_conn *c, const msgpack_object *r)
{
    printf("ticket %s is back in its line: %" PRId64 " ahead\n", hq_arg(c, "ticket_id"),
           hq_get_int(r, "ahead", 0));
}

void hq_show_appointment(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char code[64], t[40];
    printf("appointment %s, slot %s\n", hq_get_str(r, "code", code, sizeof code, "?"),
           time_at(t, sizeof t, r, "slot_ms"));
}

void hq_show_window_state(const hq_conn *c, const msgpack_object *r)
{
    (void)r;
    printf("%s %s\n", c->id, hq_arg(c, "state"));
}

void hq_show_window_call(const hq_conn *c, const msgpack_object *r)
{
    const msgpack_object *t = hq_get(r, "ticket");
    if (hq_is_nil(t)) {
        printf("%s: no ticket waiting\n", c->id);
        return;
    }
    char num[32], win[32], id[64], line[32], ln[200];
    hq_get_str(t, "line", line, sizeof line, "?");
    printf("%s -> %s  (ticket %s, line %s)%s\n", hq_get_str(t, "number", num, sizeof num, "?"),
           hq_get_str(t, "window", win, sizeof win, c->id),
           hq_get_str(t, "ticket_id", id, sizeof id, "?"), hq_named(ln, sizeof ln, 'l', line),
           strcmp(c->op, "window.recall") ? "" : ", called again");
}

/* Ops whose result is {} (or nearly): say what was done. */
void hq_show_ack(const hq_conn *c, const msgpack_object *r)
{
    const char *op = c->op;
    if (!strcmp(op, "window.no_show"))
        printf("%s: no-show recorded\n", c->id);
    else if (!strcmp(op, "window.done"))
        printf("%s: ticket done\n", c->id);
    else if (!strcmp(op, "window.transfer"))
        printf("%s: ticket moved to line %s\n", c->id, hq_arg(c, "line"));
    else if (!strcmp(op, "case.deliver")) {
        const char *tr = hq_arg(c, "tracking");
        if (!strcmp(hq_arg(c, "method"), "mail"))
            printf("case %s delivered by mail, tracking %s\n", hq_arg(c, "case_no"), tr ? tr : "-");
        else
            printf("case %s delivered at the counter\n", hq_arg(c, "case_no"));
    } else if (!strcmp(op, "rate"))
        printf("rating %s recorded\n", hq_arg(c, "score"));
    else
        hq_show_generic(r);
}

static void print_codes(const msgpack_object *list)
{
    if (!list || list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size == 0) {
        fputs("(none)", stdout);
        return;
    }
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *e = &list->via.array.ptr[i];
        char code[40];
        const char *name = NULL;
        if (e->type == MSGPACK_OBJECT_STR && e->via.str.size < sizeof code) {
            memcpy(code, e->via.str.ptr, e->via.str.size);
            code[e->via.str.size] = 0;
            name = hq_name('m', code);
        }
        if (i)
            fputs(hq_names_known() ? ", " : " ", stdout);
        if (e->type == MSGPACK_OBJECT_STR)
            hq_text(stdout, e->via.str.ptr, e->via.str.size);
        else
            fputc('?', stdout);
        if (name)
            printf(" %s", name);
    }
}

void hq_show_intake(const hq_conn *c, const msgpack_object *r)
{
    const char *outcome = hq_arg(c, "outcome");
    char cn[64], t[40];
    const char *no = hq_get_str(r, "case_no", cn, sizeof cn, NULL);
    if (!strcmp(outcome, "notify")) {
        fputs("one-time notice: missing ", stdout);
        print_codes(hq_get(r, "missing"));
        fputc('\n', stdout);
    } else if (!strcmp(outcome, "refuse")) {
        printf("refused: %s\n", hq_arg(c, "reason") ? hq_arg(c, "reason") : "-");
    } else if (no && !strcmp(outcome, "instant")) {
        printf("case %s completed at the window (instant), ready for issuance\n", no);
    } else if (no) {
        printf("case %s accepted, due %s\n", no, time_at(t, sizeof t, r, "deadline_ms"));
    } else {
        hq_show_generic(r);
    }
}

static void flags(const msgpack_object *cs)
{
    static const char *const names[] = {"due_soon", "overdue", "ready", "delivered"};
    bool any = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (hq_get_bool(cs, names[i])) {
            printf("%s%s", any ? " " : "", names[i]);
            any = true;
        }
    if (!any)
        fputs("-", stdout);
}

/* The departments of a case as "dep:state ...", into buf. */
static const char *departments(char *buf, size_t n, const msgpack_object *cs)
{
    const msgpack_object *ds = hq_get(cs, "departments");
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; ds && ds->type == MSGPACK_OBJECT_ARRAY && i < ds->via.array.size; i++) {
        char d[32], s[32], dn[200];
        hq_get_str(&ds->via.array.ptr[i], "department", d, sizeof d, "?");
        const char *name = hq_name('d', d);
        if (name)
            snprintf(dn, sizeof dn, "(%s)", name);
        int w = snprintf(buf + o, n - o, "%s%s%s:%s", i ? " " : "", d, name ? dn : "",
                         hq_get_str(&ds->via.array.ptr[i], "state", s, sizeof s, "?"));
        if (w < 0 || (size_t)w >= n - o)
            break;
        o += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, n, "-");
    return buf;
}

static void case_block(const msgpack_object *cs)
{
    char no[64], svc[32], st[32], t[40], sn[200];
    hq_get_str(cs, "service", svc, sizeof svc, "?");
    printf("case %s  service %s  %s\n", hq_get_str(cs, "case_no", no, sizeof no, "?"),
           hq_named(sn, sizeof sn, 's', svc), hq_get_str(cs, "state", st, sizeof st, "?"));
    printf("  accepted     %s\n", time_at(t, sizeof t, cs, "accepted_ms"));
    printf("  deadline     %s\n", time_at(t, sizeof t, cs, "deadline_ms"));
    char deps[1024];
    printf("  departments  %s\n", departments(deps, sizeof deps, cs));
    fputs("  flags        ", stdout);
    flags(cs);
    fputc('\n', stdout);
}

void hq_show_case(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    case_block(r);
}

void hq_show_supplement(const hq_conn *c, const msgpack_object *r)
{
    char t[40];
    printf("case %s back in review, due %s\n", hq_arg(c, "case_no"),
           time_at(t, sizeof t, r, "deadline_ms"));
}

void hq_show_claim(const hq_conn *c, const msgpack_object *r)
{
    const msgpack_object *cs = hq_get(r, "case");
    if (hq_is_nil(cs)) {
        printf("%s: nothing to claim\n", c->id);
        return;
    }
    char t[40];
    printf("%s claimed it until %s\n", c->id, time_at(t, sizeof t, r, "lease_until_ms"));
    case_block(cs);
}

void hq_show_review_list(const hq_conn *c, const msgpack_object *r)
{
    const msgpack_object *cs = hq_get(r, "cases");
    uint32_t n = cs && cs->type == MSGPACK_OBJECT_ARRAY ? cs->via.array.size : 0;
    if (n == 0) {
        printf("%s: no cases\n", c->id);
        return;
    }
    printf("%-16s %-8s %-11s %-20s %-20s %s\n", "case_no", "service", "state", "deadline",
           "departments", "flags");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &cs->via.array.ptr[i];
        char no[64], svc[32], st[32], t[40], deps[256];
        printf("%-16s %-8s %-11s %-20s %-20s ", hq_get_str(e, "case_no", no, sizeof no, "?"),
               hq_get_str(e, "service", svc, sizeof svc, "?"),
               hq_get_str(e, "state", st, sizeof st, "?"), time_at(t, sizeof t, e, "deadline_ms"),
               departments(deps, sizeof deps, e));
        flags(e);
        fputc('\n', stdout);
    }
    printf("%u case%s\n", n, n == 1 ? "" : "s");
}

void hq_show_decide(const hq_conn *c, const msgpack_object *r)
{
    char st[32];
    printf("case %s: %s (decided %s by %s)\n", hq_arg(c, "case_no"),
           hq_get_str(r, "state", st, sizeof st, "?"), hq_arg(c, "decision"), c->id);
}

/* ---- stats ---- */

#define CELL 48

/* The text of one figure: integers as they are, fractions as percents. */
static void cell(char *buf, const msgpack_object *v)
{
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(buf, CELL, "%" PRIu64, v->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(buf, CELL, "%" PRId64, v->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        snprintf(buf, CELL, "%.1f%%", v->via.f64 * 100.0);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, CELL, "%s", v->via.boolean ? "yes" : "no");
        break;
    case MSGPACK_OBJECT_STR:
        snprintf(buf, CELL, "%.*s", (int)(v->via.str.size < CELL - 1 ? v->via.str.size : CELL - 1),
                 v->via.str.ptr);
        for (char *p = buf; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        break;
    case MSGPACK_OBJECT_NIL:
        snprintf(buf, CELL, "-");
        break;
    default:
        snprintf(buf, CELL, "...");
        break;
    }
}

static void key_text(char *buf, const msgpack_object *k)
{
    cell(buf, k);
}

/* The label of row i: its id, and its name for lines ('l') and
 * departments ('d'). */
static const char *row_label(char *buf, size_t n, const msgpack_object *rows, uint32_t i, char kind)
{
    char id[CELL];
    key_text(id, &rows->via.map.ptr[i].key);
    if (kind)
        return hq_named(buf, n, kind, id);
    snprintf(buf, n, "%s", id);
    return buf;
}

/* A table of `rows` (a map of id -> map of figures) or, when `label` is
 * NULL, of the one map `rows` itself. Columns are every key that appears,
 * in the order first seen; rows of lines and departments (kind 'l', 'd')
 * have their names beside their ids. */
static void table(const char *label, const msgpack_object *rows, char kind)
{
    const msgpack_object *one[1] = {rows};
    uint32_t nrows = label ? rows->via.map.size : 1;
    const msgpack_object **rowv = label ? calloc(nrows ? nrows : 1, sizeof *rowv) : one;
    const msgpack_object *cols[64];
    uint32_t ncols = 0;
    if (!rowv)
        return;
    for (uint32_t i = 0; label && i < nrows; i++)
        rowv[i] = &rows->via.map.ptr[i].val;
    for (uint32_t i = 0; i < nrows; i++) {
        const msgpack_object *m = rowv[i];
        if (m->type != MSGPACK_OBJECT_MAP)
            continue;
        for (uint32_t j = 0; j < m->via.map.size && ncols < 64; j++) {
            const msgpack_object *k = &m->via.map.ptr[j].key;
            bool seen = false;
            for (uint32_t x = 0; x < ncols && !seen; x++)
                seen = k->type == MSGPACK_OBJECT_STR && cols[x]->type == MSGPACK_OBJECT_STR &&
                       k->via.str.size == cols[x]->via.str.size &&
                       !memcmp(k->via.str.ptr, cols[x]->via.str.ptr, k->via.str.size);
            if (!seen)
                cols[ncols++] = k;
        }
    }
    /* Widths: the label column, then each figure's. */
    char buf[CELL], lab[256];
    int w0 = label ? (int)strlen(label) : 0;
    int w[64];
    for (uint32_t i = 0; label && i < nrows; i++) {
        int lw = (int)hq_width(row_label(lab, sizeof lab, rows, i, kind));
        if (lw > w0)
            w0 = lw;
    }
    /* hq_get needs a C string key: copy each column's name once. */
    char names[64][CELL];
    for (uint32_t x = 0; x < ncols; x++) {
        key_text(names[x], cols[x]);
        w[x] = (int)strlen(names[x]);
        for (uint32_t i = 0; i < nrows; i++) {
            const msgpack_object *v = hq_get(rowv[i], names[x]);
            if (v) {
                cell(buf, v);
                if ((int)strlen(buf) > w[x])
                    w[x] = (int)strlen(buf);
            }
        }
    }
    printf("%-*s", w0, label ? label : "");
    for (uint32_t x = 0; x < ncols; x++)
        printf("  %*s", w[x], names[x]);
    fputc('\n', stdout);
    for (uint32_t i = 0; i < nrows; i++) {
        hq_pad(label ? row_label(lab, sizeof lab, rows, i, kind) : "", (size_t)w0);
        for (uint32_t x = 0; x < ncols; x++) {
            const msgpack_object *v = hq_get(rowv[i], names[x]);
            if (v)
                cell(buf, v);
            else
                snprintf(buf, CELL, "-");
            printf("  %*s", w[x], buf);
        }
        fputc('\n', stdout);
    }
    if (label)
        free(rowv);
}

/* Whether every value of map m is a map (a table of rows). */
static bool map_of_maps(const msgpack_object *m)
{
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (m->via.map.ptr[i].val.type != MSGPACK_OBJECT_MAP)
            return false;
    return true;
}

void hq_show_stats(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char day[32], t[40];
    printf("stats of %s (now %s)\n", hq_get_str(r, "day", day, sizeof day, "?"),
           time_at(t, sizeof t, r, "now_ms"));
    /* Singular labels for the tables the contract names. */
    static const char *const labels[][2] = {
        {"lines", "line"}, {"windows", "window"}, {"departments", "department"}};
    for (uint32_t i = 0; i < r->via.map.size; i++) {
        const msgpack_object *k = &r->via.map.ptr[i].key;
        const msgpack_object *v = &r->via.map.ptr[i].val;
        char name[CELL];
        key_text(name, k);
        if (!strcmp(name, "day") || !strcmp(name, "now_ms"))
            continue;
        fputc('\n', stdout);
        if (v->type != MSGPACK_OBJECT_MAP) {
            printf("%s: ", name);
            cell(t, v);
            printf("%s\n", t);
            continue;
        }
        if (v->via.map.size > 0 && map_of_maps(v)) {
            const char *label = name;
            for (size_t j = 0; j < sizeof labels / sizeof labels[0]; j++)
                if (!strcmp(name, labels[j][0]))
                    label = labels[j][1];
            table(label, v, !strcmp(name, "lines") ? 'l' : !strcmp(name, "departments") ? 'd' : 0);
        } else {
            printf("%s\n", name);
            table(NULL, v, 0);
        }
    }
}

void hq_show_day_close(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    printf("day closed: %" PRId64 " waiting ticket%s expired, every window closed\n",
           hq_get_int(r, "expired", 0), hq_get_int(r, "expired", 0) == 1 ? "" : "s");
}

void hq_show_config(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    const msgpack_object *changed = hq_get(r, "changed");
    if (hq_get(r, "version"))
        printf("config reloaded: version %" PRId64 "%s\n", hq_get_int(r, "version", 0),
               !changed || changed->type != MSGPACK_OBJECT_BOOLEAN ? ""
               : changed->via.boolean                              ? " (changed)"
                                                                   : " (unchanged)");
    else
        hq_show_generic(r);
}

void hq_show_clock(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char t[40];
    printf("server time now %s (%" PRId64 ")\n", time_at(t, sizeof t, r, "now_ms"),
           hq_get_int(r, "now_ms", 0));
}

void hq_show_digest(const hq_conn *c, const msgpack_object *r)
{
    (void)c;
    char d[160];
    printf("%s  lsn %" PRId64 "\n", hq_get_str(r, "digest", d, sizeof d, "?"),
           hq_get_int(r, "lsn", 0));
}
