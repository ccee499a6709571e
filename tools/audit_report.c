/* tools/audit_report.c: `hallq report --day D`: the statistics of one
 * business day, from the WAL alone (never from a daemon).
 *
 * Two passes over the log, both read-only:
 *   1. a scan up to the end of the day's local calendar day that derives the
 *      time series the `stats` op does not keep (waits by half hour, tickets
 *      taken by hour, service by window and hour, intake outcomes by hour,
 *      deadline marks by department);
 *   2. a replay of the same records into a temporary state dir (mkdtemp,
 *      removed afterwards), then the read op `stats {day}` on it, so the
 *      day's figures are the daemon's by construction. The replay stops at
 *      the end of the day: the live figures of the answer (departments,
 *      waiting) are those at the day's last record, not today's.
 *
 * The series follow the definitions of daemon/hall/stats.c: a ticket belongs
 * to its business day (its id starts with the day), a wait is its first call
 * minus its taken time, a service is done minus the latest call at that
 * window, and case figures count by the local day of the record.
 *
 * Output: text (default), csv, or one self-contained HTML page with inline
 * SVG charts (no script, nothing fetched). Every text taken from the log or
 * the config is escaped for the format it goes into.
 *
 * The csv (RFC 4180, CRLF): tables one after another with a blank line
 * between; each starts with its header row; the first column of every row
 * names its table. Times are the hall's local time; durations are whole
 * seconds (rounded down, as stats does); rates are fractions 0-1.
 *   report          hall, hall_id, day, now_ms (the moment the figures are
 *                   as of), as_of, records (on the day), lsn (replayed to)
 *   lines           line, then every figure of stats.lines, in its order
 *   windows         window, then stats.windows' figures
 *   departments     department, then stats.departments' figures
 *   cases           stats.cases' figures
 *   ratings         stats.ratings' figures
 *   wait_by_slot    slot (HH:MM, half hours), line, calls (first calls in
 *                   the slot), wait_sum_s, wait_avg_s; slots without a call
 *                   are left out
 *   taken_by_hour   hour (HH:00, or "before": taken before the day began,
 *                   e.g. after the previous close), line, taken
 *   served_by_hour  hour, window, served
 *   window_service  window, served, service_sum_s, service_avg_s (from the
 *                   log; equal to stats.windows)
 *   intake_by_hour  hour, accept, notify, refuse, instant, instant_rate
 *   deadline_marks  department, due_soon_marked, overdue_marked (marks made
 *                   during the day)
 * A figure added to `stats` later appears in its table by itself. */
#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"
#include "daemon/recovery.h"
#include "tools/audit.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RP_OK = 0, RP_FAIL = 1, RP_USAGE = 2 };
enum { FMT_TEXT, FMT_CSV, FMT_HTML };

#define SLOTS 48 /* half hours of a day */
#define HOURS 24
#define BEFORE HOURS /* taken[BEFORE]: tickets taken before the day began */
#define SLOT_MS (30LL * 60 * 1000)
#define HOUR_MS (60LL * 60 * 1000)
#define SCAN_STOP 1
#define MAX_COLS 32

static const char *const outcome_names[4] = {"accept", "notify", "refuse", "instant"};

/* ---- the series, kept per id (each struct starts with its id) ---- */

typedef struct line_series {
    char id[HALL_ID_MAX + 1];
    int64_t wait_ms[SLOTS]; /* sum of first-call waits, by slot of the call */
    int64_t calls[SLOTS];
    int64_t taken[HOURS + 1];
} line_series;

typedef struct window_series {
    char id[HALL_ID_MAX + 1];
    int64_t served[HOURS];
    int64_t served_total, service_ms;
    bool cur_ours; /* its current ticket is one of the day's */
    int64_t called_ms;
} window_series;

typedef struct dept_series {
    char id[HALL_ID_MAX + 1];
    int64_t due_soon_marks, overdue_marks;
} dept_series;

typedef struct rows {
    void *p;
    int n, cap;
    size_t size;
} rows;

typedef struct ticket_ent {
    char id[40]; /* "" = free slot */
    int64_t taken_ms;
    bool called;
} ticket_ent;

typedef struct report {
    int32_t day;
    char day_s[11];
    char prefix[10]; /* "YYYYMMDD-": the day's ticket ids */
    int64_t day_start, day_end;
    const hall_calendar *cal;
    rows lines, windows, depts;
    int64_t intake[HOURS][4];
    ticket_ent *tickets;
    size_t t_cap, t_n;
    uint64_t day_records, upto_lsn;
    bool oom;
    audit_progress prog;
    msgpack_zone zone;

    /* After the replay. */
    const hall_config *cfg;
    msgpack_zone szone;
    proto_buf sbuf; /* the bytes of the stats answer: stats points into them */
    msgpack_object stats;
    int64_t now_ms;
} report;

static void *row_get(rows *r, const char *id, size_t n)
{
    if (n == 0 || n > HALL_ID_MAX)
        return NULL;
    for (int i = 0; i < r->n; i++) {
        char *p = (char *)r->p + (size_t)i * r->size;
        if (strlen(p) == n && !memcmp(p, id, n))
            return p;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 8;
        void *np = realloc(r->p, (size_t)cap * r->size);
        if (!np)
            return NULL;
        r->p = np;
        r->cap = cap;
    }
    char *p = (char *)r->p + (size_t)r->n++ * r->size;
    memset(p, 0, r->size);
    memcpy(p, id, n);
    return p;
}

static void *row_find(const rows *r, const char *id)
{
    for (int i = 0; i < r->n; i++) {
        char *p = (char *)r->p + (size_t)i * r->size;
        if (!strcmp(p, id))
            return p;
    }
    return NULL;
}

/* FNV-1a over the id: the table holds one day's tickets only. */
static size_t t_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return (size_t)h;
}

static ticket_ent *ticket_slot(ticket_ent *t, size_t cap, const char *id, size_t n)
{
    for (size_t i = t_hash(id, n) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!t[i].id[0] || (strlen(t[i].id) == n && !memcmp(t[i].id, id, n)))
            return &t[i];
}

static ticket_ent *ticket_add(report *R, const char *id, size_t n)
{
    if (n >= sizeof R->tickets[0].id)
        return NULL;
    if ((R->t_n + 1) * 2 > R->t_cap) {
        size_t cap = R->t_cap ? R->t_cap * 2 : 1024;
        ticket_ent *nt = calloc(cap, sizeof *nt);
        if (!nt) {
            R->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < R->t_cap; i++)
            if (R->tickets[i].id[0])
                *ticket_slot(nt, cap, R->tickets[i].id, strlen(R->tickets[i].id)) = R->tickets[i];
        free(R->tickets);
        R->tickets = nt;
        R->t_cap = cap;
    }
    ticket_ent *e = ticket_slot(R->tickets, R->t_cap, id, n);
    if (!e->id[0]) {
        memcpy(e->id, id, n);
        e->id[n] = 0;
        R->t_n++;
    }
    return e;
}

static ticket_ent *ticket_find(report *R, const char *id, size_t n)
{
    if (!R->t_cap || n >= sizeof R->tickets[0].id)
        return NULL;
    ticket_ent *e = ticket_slot(R->tickets, R->t_cap, id, n);
    return e->id[0] ? e : NULL;
}

/* ---- reading payloads ---- */

static bool get_str(const msgpack_object *m, const char *key, const char **s, size_t *n)
{
    const msgpack_object *v = m ? proto_map_get(m, key) : NULL;
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return false;
    *s = v->via.str.ptr;
    *n = v->via.str.size;
    return true;
}

static bool get_i64(const msgpack_object *m, const char *key, int64_t *out)
{
    const msgpack_object *v = m ? proto_map_get(m, key) : NULL;
    if (!v)
        return false;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        *out = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = v->via.i64;
    else
        return false;
    return true;
}

static const msgpack_object *get_map(const msgpack_object *m, const char *key)
{
    const msgpack_object *v = m ? proto_map_get(m, key) : NULL;
    return v && v->type == MSGPACK_OBJECT_MAP ? v : NULL;
}

static bool str_is(const msgpack_object *v, const char *s)
{
    size_t n = strlen(s);
    return v->type == MSGPACK_OBJECT_STR && v->via.str.size == n && !memcmp(v->via.str.ptr, s, n);
}

static int hour_of(const report *R, int64_t at)
{
    int64_t h = (at - R->day_start) / HOUR_MS;
    return h < 0 ? 0 : h >= HOURS ? HOURS - 1 : (int)h;
}

/* The deadline events a record caused: [topic, [department...], data]. */
static void count_marks(report *R, const msgpack_object *ev)
{
    if (!ev || ev->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < ev->via.array.size; i++) {
        const msgpack_object *e = &ev->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            !str_is(&e->via.array.ptr[0], "deadline") ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY ||
            e->via.array.ptr[2].type != MSGPACK_OBJECT_MAP)
            continue;
        const msgpack_object *data = &e->via.array.ptr[2];
        bool overdue = proto_map_get(data, "overdue") != NULL;
        const msgpack_object *deps = &e->via.array.ptr[1];
        for (uint32_t j = 0; j < deps->via.array.size; j++) {
            const msgpack_object *d = &deps->via.array.ptr[j];
            if (d->type != MSGPACK_OBJECT_STR)
                continue;
            dept_series *ds = row_get(&R->depts, d->via.str.ptr, d->via.str.size);
            if (!ds)
                continue;
            if (overdue)
                ds->overdue_marks++;
            else
                ds->due_soon_marks++;
        }
    }
}

static bool day_ticket(const report *R, const char *id, size_t n)
{
    return n > 9 && !memcmp(id, R->prefix, 9);
}

static int scan_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    report *R = ctx;
    (void)pos;
    int64_t at = (int64_t)rec->at_ms;
    if (at > R->day_end)
        return SCAN_STOP;
    if ((rec->lsn & 0x3fff) == 0)
        audit_progress_show(&R->prog, rec->lsn);
    R->upto_lsn = rec->lsn;
    bool today = at >= R->day_start;
    if (today)
        R->day_records++;
    const hall_op_def *def = hall_op_by_record(rec->type);
    if (!def)
        return 0;
    switch (def->op) {
    case HALL_OP_TICKET_TAKE:
    case HALL_OP_WINDOW_CALL:
    case HALL_OP_WINDOW_DONE:
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_TRANSFER:
        break;
    default:
        if (!today)
            return 0; /* only the day's own records count the rest */
    }
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_clear(&R->zone);
    if (msgpack_unpack((const char *)rec->payload, rec->payload_len, &off, &R->zone, &o) !=
            MSGPACK_UNPACK_SUCCESS ||
        o.type != MSGPACK_OBJECT_MAP)
        return 0; /* the replay names a malformed record */
    const msgpack_object *args = get_map(&o, "args"), *res = get_map(&o, "result");
    const char *id, *line;
    size_t idn, linen;
    window_series *w = NULL;
    if (rec->actor_role == HALL_ROLE_WINDOW)
        w = row_get(&R->windows, rec->actor_id, rec->actor_id_len);
    switch (def->op) {
    case HALL_OP_TICKET_TAKE: {
        int64_t taken;
        if (!get_str(res, "ticket_id", &id, &idn) || !day_ticket(R, id, idn) ||
            !get_str(res, "line", &line, &linen) || !get_i64(res, "taken_ms", &taken))
            break;
        ticket_ent *t = ticket_add(R, id, idn);
        line_series *ls = row_get(&R->lines, line, linen);
        if (t)
            t->taken_ms = taken;
        if (ls)
            ls->taken[taken < R->day_start ? BEFORE : hour_of(R, taken)]++;
        break;
    }
    case HALL_OP_WINDOW_CALL: {
        const msgpack_object *t = get_map(res, "ticket");
        if (!w || !t || !get_str(t, "ticket_id", &id, &idn) || !get_str(t, "line", &line, &linen))
            break;
        w->cur_ours = day_ticket(R, id, idn);
        w->called_ms = at;
        ticket_ent *te = w->cur_ours ? ticket_find(R, id, idn) : NULL;
        if (!te || te->called)
            break;
        te->called = true;
        line_series *ls = row_get(&R->lines, line, linen);
        if (!ls)
            break;
        int64_t slot = (at - R->day_start) / SLOT_MS;
        slot = slot < 0 ? 0 : slot >= SLOTS ? SLOTS - 1 : slot;
        ls->wait_ms[slot] += at > te->taken_ms ? at - te->taken_ms : 0;
        ls->calls[slot]++;
        break;
    }
    case HALL_OP_WINDOW_DONE:
        if (w && w->cur_ours) {
            w->served[hour_of(R, at)]++;
            w->served_total++;
            w->service_ms += at > w->called_ms ? at - w->called_ms : 0;
        }
        if (w)
            w->cur_ours = false;
        break;
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_TRANSFER:
        if (w)
            w->cur_ours = false;
        break;
    case HALL_OP_WINDOW_INTAKE: {
        const char *oc;
        size_t ocn;
        if (!get_str(args, "outcome", &oc, &ocn))
            break;
        for (int k = 0; k < 4; k++)
            if (strlen(outcome_names[k]) == ocn && !memcmp(outcome_names[k], oc, ocn))
                R->intake[hour_of(R, at)][k]++;
        break;
    }
    default:
        break;
    }
    if (today)
        count_marks(R, proto_map_get(&o, "ev"));
    return R->oom ? -ENOMEM : 0;
}

/* ---- the replay and the stats read ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void replay_progress(void *ctx, uint64_t lsn)
{
    audit_progress_show(ctx, lsn);
}

/* Replays the log up to the day's end into `tmp` and reads `stats {day}`
 * into R->stats. 0, or -1 with a message in err. */
static int read_stats(report *R, const char *wal_dir, const hall_config *first, const char *tmp,
                      hall_store *st, hall **hp, char *err, size_t errlen)
{
    if (hall_store_open(st, tmp, false, first->state.map_bytes, err, errlen) != 0)
        return -1;
    if (hall_open(hp, st, err, errlen) != 0)
        return -1;
    audit_progress prog;
    audit_progress_init(&prog, "report: replaying LSN", R->upto_lsn);
    recovery_bounds b = {.until_ms = R->day_end,
                         .upto_lsn = R->upto_lsn,
                         .quiet = true,
                         .progress = replay_progress,
                         .ctx = &prog};
    int rc = recovery_replay(*hp, st, wal_dir, NULL, NULL, &b, err, errlen);
    audit_progress_end(&prog);
    if (rc != 0)
        return -1;
    hall *h = *hp;
    R->cfg = hall_config_current(h);
    if (!R->cfg) {
        snprintf(err, errlen, "no hall config in force after the replay");
        return -1;
    }
    R->now_ms = hall_clock_ms(h) < R->day_end ? hall_clock_ms(h) : R->day_end;

    proto_buf ab;
    proto_buf_init(&ab);
    msgpack_packer pk;
    proto_packer_init(&pk, &ab);
    msgpack_pack_map(&pk, 1);
    proto_pack_kv_str(&pk, "day", R->day_s);
    msgpack_object args;
    size_t off = 0;
    rc = -1;
    if (ab.oom || msgpack_unpack((const char *)ab.p, ab.len, &off, &R->szone, &args) !=
                      MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    hall_request r = {.def = hall_op_get(HALL_OP_STATS), .args = &args, .now_ms = R->now_ms};
    r.actor.role = HALL_ROLE_ADMIN;
    snprintf(r.actor.id, sizeof r.actor.id, "report");
    MDB_txn *txn;
    int mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(mrc));
        goto out;
    }
    proto_error e = {0};
    int hrc = hall_read(h, txn, &r, &R->sbuf, &e);
    mdb_txn_abort(txn);
    if (hrc != 0) {
        snprintf(err, errlen, "stats: %s: %s", proto_err_name(e.code), e.msg);
        goto out;
    }
    off = 0;
    if (msgpack_unpack((const char *)R->sbuf.p, R->sbuf.len, &off, &R->szone, &R->stats) !=
            MSGPACK_UNPACK_SUCCESS ||
        R->stats.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "stats: a malformed result");
        goto out;
    }
    rc = 0;
out:
    proto_buf_free(&ab);
    return rc;
}

/* ---- formatting values ---- */

#define CELL 64

/* A figure: integers as they are, fractions as percents (text, html) or
 * as fractions (csv). */
static void fmt_val(char *buf, const msgpack_object *v, int fmt)
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
        if (fmt != FMT_CSV) {
            snprintf(buf, CELL, "%.1f%%", v->via.f64 * 100.0);
            break;
        }
        /* csv: a text that reads back as the very same double. */
        snprintf(buf, CELL, "%.15g", v->via.f64);
        if (strtod(buf, NULL) != v->via.f64)
            snprintf(buf, CELL, "%.17g", v->via.f64);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        snprintf(buf, CELL, "%s", v->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_STR:
        snprintf(buf, CELL, "%.*s", (int)(v->via.str.size < CELL - 1 ? v->via.str.size : CELL - 1),
                 v->via.str.ptr);
        break;
    default:
        snprintf(buf, CELL, "-");
        break;
    }
}

static void key_str(char *buf, const msgpack_object *k)
{
    fmt_val(buf, k, FMT_TEXT);
}

/* Writes s as it may stand in the format: text loses control bytes, csv
 * quotes what needs quoting, html escapes markup and replaces bytes that
 * are not UTF-8. */
static void put_esc(FILE *f, const char *s, size_t n, int fmt)
{
    if (fmt == FMT_CSV) {
        bool q = n == 0 ? false : strcspn(s, ",\"\r\n") < n || s[0] == ' ' || s[n - 1] == ' ';
        if (q)
            fputc('"', f);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"')
                fputs("\"\"", f);
            else if (c < 0x20 || c == 0x7f)
                fputc(' ', f);
            else
                fputc(c, f);
        }
        if (q)
            fputc('"', f);
        return;
    }
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                fputc(fmt == FMT_HTML && (c == '\n' || c == '\t') ? ' ' : '?', f);
            else if (fmt == FMT_HTML && c == '<')
                fputs("&lt;", f);
            else if (fmt == FMT_HTML && c == '>')
                fputs("&gt;", f);
            else if (fmt == FMT_HTML && c == '&')
                fputs("&amp;", f);
            else if (fmt == FMT_HTML && c == '"')
                fputs("&quot;", f);
            else if (fmt == FMT_HTML && c == '\'')
                fputs("&#39;", f);
            else
                fputc(c, f);
            i++;
            continue;
        }
        /* A UTF-8 sequence: its length from the lead byte, then checks. */
        size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
        bool ok = len && i + len <= n && c < 0xf5;
        for (size_t j = 1; ok && j < len; j++)
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        if (ok && len == 3) {
            unsigned char c1 = (unsigned char)s[i + 1];
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
        } else if (ok && len == 4) {
            unsigned char c1 = (unsigned char)s[i + 1];
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (ok) {
            fwrite(s + i, 1, len, f);
            i += len;
        } else {
            fputs(fmt == FMT_HTML ? "\xef\xbf\xbd" : "?", f);
            i++;
        }
    }
}

static void put_s(FILE *f, const char *s, int fmt)
{
    put_esc(f, s, strlen(s), fmt);
}

/* ---- the tables of `stats` (columns: every key the rows hold) ---- */

typedef struct table {
    const char *name;  /* section of stats: "lines" */
    const char *label; /* its id column: "line"; NULL: the section is one row */
    const msgpack_object *rows[HALL_MAX_ITEMS];
    const msgpack_object *keys[HALL_MAX_ITEMS];
    int nrows;
    char cols[MAX_COLS][CELL];
    int ncols;
} table;

static void table_load(table *t, const report *R, const char *name, const char *label)
{
    memset(t, 0, sizeof *t);
    t->name = name;
    t->label = label;
    const msgpack_object *sec = get_map(&R->stats, name);
    if (!sec)
        return;
    if (label) {
        for (uint32_t i = 0; i < sec->via.map.size && t->nrows < HALL_MAX_ITEMS; i++) {
            if (sec->via.map.ptr[i].val.type != MSGPACK_OBJECT_MAP)
                continue;
            t->keys[t->nrows] = &sec->via.map.ptr[i].key;
            t->rows[t->nrows++] = &sec->via.map.ptr[i].val;
        }
    } else {
        t->rows[t->nrows++] = sec;
    }
    for (int i = 0; i < t->nrows; i++) {
        const msgpack_object *m = t->rows[i];
        for (uint32_t j = 0; j < m->via.map.size && t->ncols < MAX_COLS; j++) {
            char k[CELL];
            key_str(k, &m->via.map.ptr[j].key);
            bool seen = false;
            for (int x = 0; x < t->ncols && !seen; x++)
                seen = !strcmp(t->cols[x], k);
            if (!seen)
                snprintf(t->cols[t->ncols++], CELL, "%s", k);
        }
    }
}

static void table_cell(const table *t, int row, int col, char *buf, int fmt)
{
    const msgpack_object *v = proto_map_get(t->rows[row], t->cols[col]);
    if (v)
        fmt_val(buf, v, fmt);
    else
        snprintf(buf, CELL, "-");
}

static const char *const sections[][2] = {{"lines", "line"},
                                          {"windows", "window"},
                                          {"departments", "department"},
                                          {"cases", NULL},
                                          {"ratings", NULL}};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

/* A figure of stats by path ("cases", NULL, "instant_rate"). */
static const msgpack_object *figure(const report *R, const char *sec, const char *id,
                                    const char *key)
{
    const msgpack_object *m = get_map(&R->stats, sec);
    if (id)
        m = get_map(m, id);
    return m ? proto_map_get(m, key) : NULL;
}

static int64_t figure_i64(const report *R, const char *sec, const char *id, const char *key)
{
    const msgpack_object *v = figure(R, sec, id, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)v->via.u64 : 0;
}

static double figure_f64(const report *R, const char *sec, const char *id, const char *key)
{
    const msgpack_object *v = figure(R, sec, id, key);
    if (!v)
        return 0;
    if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64)
        return v->via.f64;
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)v->via.u64 : 0;
}

/* ---- what the series show: the ids in config order, then the rest ---- */

static void slot_name(int slot, char out[6])
{
    snprintf(out, 6, "%02d:%02d", slot / 2, slot % 2 * 30);
}

static void hour_name(int hour, char out[8])
{
    if (hour == BEFORE)
        snprintf(out, 8, "before");
    else
        snprintf(out, 8, "%02d:00", hour);
}

/* The range of slots (half hours) a chart or table covers: the opening
 * hours, widened to every slot that has data. */
static void slot_range(const report *R, int *lo, int *hi)
{
    *lo = R->cal->open_min / 30;
    *hi = (R->cal->close_min + 29) / 30 - 1;
    for (int i = 0; i < R->lines.n; i++) {
        const line_series *ls = (const line_series *)R->lines.p + i;
        for (int s = 0; s < SLOTS; s++)
            if (ls->calls[s]) {
                *lo = s < *lo ? s : *lo;
                *hi = s > *hi ? s : *hi;
            }
    }
    if (*lo < 0)
        *lo = 0;
    if (*hi >= SLOTS)
        *hi = SLOTS - 1;
    if (*hi < *lo)
        *hi = *lo;
}

static bool hour_has_data(const report *R, int h)
{
    for (int i = 0; i < R->lines.n; i++)
        if (((const line_series *)R->lines.p)[i].taken[h])
            return true;
    if (h == BEFORE)
        return false;
    for (int i = 0; i < R->windows.n; i++)
        if (((const window_series *)R->windows.p)[i].served[h])
            return true;
    for (int k = 0; k < 4; k++)
        if (R->intake[h][k])
            return true;
    return false;
}

static void hour_range(const report *R, int *lo, int *hi)
{
    *lo = R->cal->open_min / 60;
    *hi = (R->cal->close_min + 59) / 60 - 1;
    for (int h = 0; h < HOURS; h++)
        if (hour_has_data(R, h)) {
            *lo = h < *lo ? h : *lo;
            *hi = h > *hi ? h : *hi;
        }
    if (*lo < 0)
        *lo = 0;
    if (*hi >= HOURS)
        *hi = HOURS - 1;
    if (*hi < *lo)
        *hi = *lo;
}

/* The ids a series shows: every configured one, then any other the log
 * named (a config changed during the day). */
typedef struct idlist {
    const char *id[HALL_MAX_ITEMS * 2];
    const char *name[HALL_MAX_ITEMS * 2];
    int n;
} idlist;

static void ids_add(idlist *l, const char *id, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->id[i], id))
            return;
    if (l->n < HALL_MAX_ITEMS * 2) {
        l->id[l->n] = id;
        l->name[l->n++] = name;
    }
}

static void ids_lines(const report *R, idlist *l)
{
    l->n = 0;
    for (int i = 0; i < R->cfg->n_lines; i++)
        ids_add(l, R->cfg->lines[i].id, R->cfg->lines[i].name);
    for (int i = 0; i < R->lines.n; i++)
        ids_add(l, ((const line_series *)R->lines.p)[i].id, "");
}

static void ids_windows(const report *R, idlist *l)
{
    l->n = 0;
    for (int i = 0; i < R->cfg->n_windows; i++)
        ids_add(l, R->cfg->windows[i].id, R->cfg->windows[i].kind);
    for (int i = 0; i < R->windows.n; i++)
        ids_add(l, ((const window_series *)R->windows.p)[i].id, "");
}

static void ids_depts(const report *R, idlist *l)
{
    l->n = 0;
    for (int i = 0; i < R->cfg->n_departments; i++)
        ids_add(l, R->cfg->departments[i].id, R->cfg->departments[i].name);
    for (int i = 0; i < R->depts.n; i++)
        ids_add(l, ((const dept_series *)R->depts.p)[i].id, "");
}

static const line_series *line_of(const report *R, const char *id)
{
    return row_find(&R->lines, id);
}

static const window_series *window_of(const report *R, const char *id)
{
    return row_find(&R->windows, id);
}

static const dept_series *dept_of(const report *R, const char *id)
{
    return row_find(&R->depts, id);
}

static int64_t intake_total(const report *R, int h)
{
    return R->intake[h][0] + R->intake[h][1] + R->intake[h][2] + R->intake[h][3];
}

/* ---- text ---- */

/* Rows of a text table: a header and every id a hall may have (twice:
 * configured ones and others the log named). */
#define TT_ROWS (HALL_MAX_ITEMS * 2 + 2)

typedef struct ttab {
    char cell[TT_ROWS][MAX_COLS + 2][CELL]; /* rows x cols */
    int nrows, ncols;
} ttab;

static void tt_print(FILE *f, ttab *t)
{
    int w[MAX_COLS + 2] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            if ((int)strlen(t->cell[r][c]) > w[c])
                w[c] = (int)strlen(t->cell[r][c]);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            int pad = w[c] - (int)strlen(t->cell[r][c]);
            if (c > 0)
                fputs("  ", f);
            if (c > 0)
                fprintf(f, "%*s", pad, "");
            put_s(f, t->cell[r][c], FMT_TEXT);
            if (c == 0 && t->ncols > 1)
                fprintf(f, "%*s", pad, "");
        }
        fputc('\n', f);
    }
}

static void tt_set(ttab *t, int r, int c, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tt_set(ttab *t, int r, int c, const char *fmt, ...)
{
    if (r >= TT_ROWS || c >= MAX_COLS + 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->cell[r][c], CELL, fmt, ap);
    va_end(ap);
    if (r >= t->nrows)
        t->nrows = r + 1;
    if (c >= t->ncols)
        t->ncols = c + 1;
}

static void secs_text(char *buf, size_t n, int64_t s)
{
    if (s >= 3600)
        snprintf(buf, n, "%" PRId64 ":%02d:%02d", s / 3600, (int)(s / 60 % 60), (int)(s % 60));
    else
        snprintf(buf, n, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

static void out_text(FILE *f, const report *R)
{
    ttab *t = calloc(1, sizeof *t);
    if (!t)
        return;
    char asof[20];
    audit_time_format(R->cfg, R->now_ms, asof);
    fputs("report of ", f);
    put_s(f, R->cfg->name, FMT_TEXT);
    fprintf(f, " (hall ");
    put_s(f, R->cfg->hall_id, FMT_TEXT);
    fprintf(f,
            ") for %s\nas of %s, from %" PRIu64 " records on the day (replayed LSN 1..%" PRIu64
            ")\n",
            R->day_s, asof, R->day_records, R->upto_lsn);

    for (size_t s = 0; s < N_SECTIONS; s++) {
        table tb;
        table_load(&tb, R, sections[s][0], sections[s][1]);
        memset(t, 0, sizeof *t);
        int c0 = tb.label ? 1 : 0;
        if (tb.label)
            tt_set(t, 0, 0, "%s", tb.label);
        for (int c = 0; c < tb.ncols; c++)
            tt_set(t, 0, c0 + c, "%s", tb.cols[c]);
        for (int r = 0; r < tb.nrows; r++) {
            char buf[CELL];
            if (tb.label) {
                key_str(buf, tb.keys[r]);
                tt_set(t, r + 1, 0, "%s", buf);
            }
            for (int c = 0; c < tb.ncols; c++) {
                table_cell(&tb, r, c, buf, FMT_TEXT);
                tt_set(t, r + 1, c0 + c, "%s", buf);
            }
        }
        fprintf(f, "\n%s\n", tb.name);
        tt_print(f, t);
    }

    idlist L;
    ids_lines(R, &L);
    int lo, hi;
    slot_range(R, &lo, &hi);
    fprintf(f, "\nwaiting by half hour (average wait of the tickets first called then, "
               "m:ss; calls in brackets)\n");
    memset(t, 0, sizeof *t);
    tt_set(t, 0, 0, "slot");
    for (int i = 0; i < L.n && i < MAX_COLS; i++)
        tt_set(t, 0, i + 1, "%s", L.id[i]);
    for (int s = lo, r = 1; s <= hi; s++, r++) {
        char sn[6], w[24];
        slot_name(s, sn);
        tt_set(t, r, 0, "%s", sn);
        for (int i = 0; i < L.n && i < MAX_COLS; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            if (ls && ls->calls[s]) {
                secs_text(w, sizeof w, ls->wait_ms[s] / ls->calls[s] / 1000);
                tt_set(t, r, i + 1, "%s (%" PRId64 ")", w, ls->calls[s]);
            } else {
                tt_set(t, r, i + 1, "-");
            }
        }
    }
    tt_print(f, t);

    int hlo, hhi;
    hour_range(R, &hlo, &hhi);
    fprintf(f, "\ntickets taken by hour (\"before\": taken before the day began)\n");
    memset(t, 0, sizeof *t);
    tt_set(t, 0, 0, "hour");
    int nc = L.n < MAX_COLS ? L.n : MAX_COLS;
    for (int i = 0; i < nc; i++)
        tt_set(t, 0, i + 1, "%s", L.id[i]);
    tt_set(t, 0, nc + 1, "all");
    int r = 1;
    for (int h = hour_has_data(R, BEFORE) ? BEFORE : hlo; h <= hhi || h == BEFORE;
         h = h == BEFORE ? hlo : h + 1) {
        char hn[8];
        hour_name(h, hn);
        tt_set(t, r, 0, "%s", hn);
        int64_t all = 0;
        for (int i = 0; i < nc; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            int64_t v = ls ? ls->taken[h] : 0;
            all += v;
            tt_set(t, r, i + 1, "%" PRId64, v);
        }
        tt_set(t, r, nc + 1, "%" PRId64, all);
        r++;
    }
    tt_print(f, t);

    idlist W;
    ids_windows(R, &W);
    fprintf(f, "\nservice by window (from the log: served by hour, total, average m:ss)\n");
    memset(t, 0, sizeof *t);
    tt_set(t, 0, 0, "window");
    int col = 1;
    for (int h = hlo; h <= hhi && col < MAX_COLS; h++, col++) {
        char hn[8];
        hour_name(h, hn);
        tt_set(t, 0, col, "%.2s", hn);
    }
    tt_set(t, 0, col, "served");
    tt_set(t, 0, col + 1, "avg");
    for (int i = 0; i < W.n; i++) {
        const window_series *ws = window_of(R, W.id[i]);
        tt_set(t, i + 1, 0, "%s", W.id[i]);
        int c = 1;
        for (int h = hlo; h <= hhi && c < MAX_COLS; h++, c++)
            tt_set(t, i + 1, c, "%" PRId64, ws ? ws->served[h] : 0);
        char avg[24];
        secs_text(avg, sizeof avg,
                  ws && ws->served_total ? ws->service_ms / ws->served_total / 1000 : 0);
        tt_set(t, i + 1, c, "%" PRId64, ws ? ws->served_total : 0);
        tt_set(t, i + 1, c + 1, "%s", avg);
    }
    tt_print(f, t);

    fprintf(f, "\nintake outcomes by hour (instant rate = instant / all outcomes)\n");
    memset(t, 0, sizeof *t);
    tt_set(t, 0, 0, "hour");
    for (int k = 0; k < 4; k++)
        tt_set(t, 0, k + 1, "%s", outcome_names[k]);
    tt_set(t, 0, 5, "instant_rate");
    r = 1;
    int64_t sum[4] = {0};
    for (int h = hlo; h <= hhi; h++, r++) {
        char hn[8];
        hour_name(h, hn);
        tt_set(t, r, 0, "%s", hn);
        for (int k = 0; k < 4; k++) {
            tt_set(t, r, k + 1, "%" PRId64, R->intake[h][k]);
            sum[k] += R->intake[h][k];
        }
        int64_t n = intake_total(R, h);
        if (n)
            tt_set(t, r, 5, "%.1f%%", 100.0 * (double)R->intake[h][3] / (double)n);
        else
            tt_set(t, r, 5, "-");
    }
    tt_set(t, r, 0, "day");
    for (int k = 0; k < 4; k++)
        tt_set(t, r, k + 1, "%" PRId64, sum[k]);
    int64_t all = sum[0] + sum[1] + sum[2] + sum[3];
    tt_set(t, r, 5, "%.1f%%", all ? 100.0 * (double)sum[3] / (double)all : 0.0);
    tt_print(f, t);

    idlist D;
    ids_depts(R, &D);
    fprintf(f, "\ndeadlines by department (marked during the day; in review, due soon and "
               "overdue at the day's end)\n");
    memset(t, 0, sizeof *t);
    tt_set(t, 0, 0, "department");
    tt_set(t, 0, 1, "due_soon_marked");
    tt_set(t, 0, 2, "overdue_marked");
    tt_set(t, 0, 3, "in_review");
    tt_set(t, 0, 4, "due_soon");
    tt_set(t, 0, 5, "overdue");
    for (int i = 0; i < D.n; i++) {
        const dept_series *ds = dept_of(R, D.id[i]);
        tt_set(t, i + 1, 0, "%s", D.id[i]);
        tt_set(t, i + 1, 1, "%" PRId64, ds ? ds->due_soon_marks : 0);
        tt_set(t, i + 1, 2, "%" PRId64, ds ? ds->overdue_marks : 0);
        tt_set(t, i + 1, 3, "%" PRId64, figure_i64(R, "departments", D.id[i], "in_review"));
        tt_set(t, i + 1, 4, "%" PRId64, figure_i64(R, "departments", D.id[i], "due_soon"));
        tt_set(t, i + 1, 5, "%" PRId64, figure_i64(R, "departments", D.id[i], "overdue"));
    }
    tt_print(f, t);
    free(t);
}

/* ---- csv ---- */

static void csv_row(FILE *f, int n, const char *const *cells)
{
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        put_s(f, cells[i], FMT_CSV);
    }
    fputs("\r\n", f);
}

static void csv_rowf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A row of figures the report made itself (no text that needs quoting). */
static void csv_rowf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputs("\r\n", f);
}

static void out_csv(FILE *f, const report *R)
{
    char now[24], asof[20], recs[24], lsn[24];
    snprintf(now, sizeof now, "%" PRId64, R->now_ms);
    snprintf(recs, sizeof recs, "%" PRIu64, R->day_records);
    snprintf(lsn, sizeof lsn, "%" PRIu64, R->upto_lsn);
    audit_time_format(R->cfg, R->now_ms, asof);
    const char *mh[] = {"table", "hall", "hall_id", "day", "now_ms", "as_of", "records", "lsn"};
    const char *mv[] = {"report", R->cfg->name, R->cfg->hall_id, R->day_s, now, asof, recs, lsn};
    csv_row(f, 8, mh);
    csv_row(f, 8, mv);

    for (size_t s = 0; s < N_SECTIONS; s++) {
        table tb;
        table_load(&tb, R, sections[s][0], sections[s][1]);
        const char *cells[MAX_COLS + 2];
        char vals[MAX_COLS + 2][CELL];
        int n = 0;
        cells[n++] = "table";
        if (tb.label)
            cells[n++] = tb.label;
        for (int c = 0; c < tb.ncols; c++)
            cells[n++] = tb.cols[c];
        fputs("\r\n", f);
        csv_row(f, n, cells);
        for (int r = 0; r < tb.nrows; r++) {
            n = 0;
            cells[n++] = tb.name;
            if (tb.label) {
                key_str(vals[n], tb.keys[r]);
                cells[n] = vals[n];
                n++;
            }
            for (int c = 0; c < tb.ncols; c++, n++) {
                table_cell(&tb, r, c, vals[n], FMT_CSV);
                cells[n] = vals[n];
            }
            csv_row(f, n, cells);
        }
    }

    idlist L, W, D;
    ids_lines(R, &L);
    ids_windows(R, &W);
    ids_depts(R, &D);
    fputs("\r\n", f);
    csv_rowf(f, "table,slot,line,calls,wait_sum_s,wait_avg_s");
    for (int s = 0; s < SLOTS; s++)
        for (int i = 0; i < L.n; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            if (!ls || !ls->calls[s])
                continue;
            char sn[6];
            slot_name(s, sn);
            fprintf(f, "wait_by_slot,%s,", sn);
            put_s(f, L.id[i], FMT_CSV);
            csv_rowf(f, ",%" PRId64 ",%" PRId64 ",%" PRId64, ls->calls[s], ls->wait_ms[s] / 1000,
                     ls->wait_ms[s] / ls->calls[s] / 1000);
        }
    fputs("\r\n", f);
    csv_rowf(f, "table,hour,line,taken");
    for (int h = 0; h <= HOURS; h++)
        for (int i = 0; i < L.n; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            if (!ls || !ls->taken[h])
                continue;
            char hn[8];
            hour_name(h, hn);
            fprintf(f, "taken_by_hour,%s,", hn);
            put_s(f, L.id[i], FMT_CSV);
            csv_rowf(f, ",%" PRId64, ls->taken[h]);
        }
    fputs("\r\n", f);
    csv_rowf(f, "table,hour,window,served");
    for (int h = 0; h < HOURS; h++)
        for (int i = 0; i < W.n; i++) {
            const window_series *ws = window_of(R, W.id[i]);
            if (!ws || !ws->served[h])
                continue;
            char hn[8];
            hour_name(h, hn);
            fprintf(f, "served_by_hour,%s,", hn);
            put_s(f, W.id[i], FMT_CSV);
            csv_rowf(f, ",%" PRId64, ws->served[h]);
        }
    fputs("\r\n", f);
    csv_rowf(f, "table,window,served,service_sum_s,service_avg_s");
    for (int i = 0; i < W.n; i++) {
        const window_series *ws = window_of(R, W.id[i]);
        int64_t n = ws ? ws->served_total : 0, ms = ws ? ws->service_ms : 0;
        fputs("window_service,", f);
        put_s(f, W.id[i], FMT_CSV);
        csv_rowf(f, ",%" PRId64 ",%" PRId64 ",%" PRId64, n, ms / 1000, n ? ms / n / 1000 : 0);
    }
    fputs("\r\n", f);
    csv_rowf(f, "table,hour,accept,notify,refuse,instant,instant_rate");
    for (int h = 0; h < HOURS; h++) {
        int64_t n = intake_total(R, h);
        if (!n)
            continue;
        csv_rowf(f, "intake_by_hour,%02d:00,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.6f",
                 h, R->intake[h][0], R->intake[h][1], R->intake[h][2], R->intake[h][3],
                 (double)R->intake[h][3] / (double)n);
    }
    fputs("\r\n", f);
    csv_rowf(f, "table,department,due_soon_marked,overdue_marked");
    for (int i = 0; i < D.n; i++) {
        const dept_series *ds = dept_of(R, D.id[i]);
        fputs("deadline_marks,", f);
        put_s(f, D.id[i], FMT_CSV);
        csv_rowf(f, ",%" PRId64 ",%" PRId64, ds ? ds->due_soon_marks : 0,
                 ds ? ds->overdue_marks : 0);
    }
}

/* ---- html: one page, inline CSS and SVG, nothing fetched ---- */

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};
#define PALETTE(i) palette[(i) % (int)(sizeof palette / sizeof palette[0])]

/* A chart's frame: plot area inside margins, y from 0 to a round ymax. */
typedef struct chart {
    FILE *f;
    int w, h, ml, mr, mt, mb;
    double ymax;
    int nx; /* categories along x */
} chart;

static double nice_max(double v)
{
    if (v <= 0)
        return 1;
    double p = 1;
    while (p * 10 <= v)
        p *= 10;
    while (p > v)
        p /= 10;
    for (int i = 0; i < 4; i++) {
        static const double m[] = {1, 2, 5, 10};
        if (m[i] * p >= v)
            return m[i] * p;
    }
    return 10 * p;
}

static double ch_x(const chart *c, double i) /* centre of category i */
{
    return c->ml + (i + 0.5) * (c->w - c->ml - c->mr) / c->nx;
}

static double ch_bw(const chart *c)
{
    return (double)(c->w - c->ml - c->mr) / c->nx;
}

static double ch_y(const chart *c, double v)
{
    return c->h - c->mb - v / c->ymax * (c->h - c->mt - c->mb);
}

static void ch_begin(chart *c, FILE *f, const char *id, int nx, double ymax, const char *ylabel,
                     bool percent, bool integral)
{
    c->f = f;
    c->w = 1100;
    c->h = 260;
    c->ml = 60;
    c->mr = 20;
    c->mt = 20;
    c->mb = 40;
    c->nx = nx > 0 ? nx : 1;
    /* Counts get whole-number ticks: at least 0..5 in steps of 1. */
    c->ymax = percent ? 1.0 : nice_max(integral && ymax < 5 ? 5 : ymax);
    fprintf(f,
            "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            id, c->w, c->h, c->w, c->h);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", c->w, c->h);
    for (int i = 0; i <= 5; i++) {
        double v = c->ymax * i / 5, y = ch_y(c, v);
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"1\"/>\n",
                c->ml, y, c->w - c->mr, y, i ? "#e4e4e4" : "#444444");
        if (percent)
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%.0f%%</text>\n",
                    c->ml - 6, y + 4, v * 100);
        else
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%g</text>\n",
                    c->ml - 6, y + 4, v);
    }
    fprintf(f,
            "<text x=\"14\" y=\"%d\" class=\"ax\" transform=\"rotate(-90 14 %d)\" "
            "text-anchor=\"middle\">",
            (c->h - c->mb + c->mt) / 2, (c->h - c->mb + c->mt) / 2);
    put_s(f, ylabel, FMT_HTML);
    fputs("</text>\n", f);
}

static void ch_xlabel(const chart *c, int i, const char *label)
{
    fprintf(c->f, "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">", ch_x(c, i),
            c->h - c->mb + 16);
    put_s(c->f, label, FMT_HTML);
    fputs("</text>\n", c->f);
}

static void ch_bar(const chart *c, double x, double w, double v0, double v1, const char *color,
                   const char *tip)
{
    double y0 = ch_y(c, v0), y1 = ch_y(c, v1);
    fprintf(c->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
            x, y1, w, y0 - y1, color);
    put_s(c->f, tip, FMT_HTML);
    fputs("</title></rect>\n", c->f);
}

static void ch_text(const chart *c, double x, double y, const char *cls, const char *s)
{
    fprintf(c->f, "<text x=\"%.1f\" y=\"%.1f\" class=\"%s\" text-anchor=\"middle\">", x, y, cls);
    put_s(c->f, s, FMT_HTML);
    fputs("</text>\n", c->f);
}

static void ch_end(const chart *c)
{
    fputs("</svg>\n", c->f);
}

/* A legend under a chart: coloured keys and names. */
static void legend(FILE *f, int n, const char *const *names, const char *const *colors)
{
    fputs("<div class=\"legend\">", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "<span><i style=\"background:%s\"></i>", colors ? colors[i] : PALETTE(i));
        put_s(f, names[i], FMT_HTML);
        fputs("</span>", f);
    }
    fputs("</div>\n", f);
}

static void chart_waits(FILE *f, const report *R)
{
    idlist L;
    ids_lines(R, &L);
    int lo, hi;
    slot_range(R, &lo, &hi);
    double ymax = 0;
    for (int i = 0; i < R->lines.n; i++) {
        const line_series *ls = (const line_series *)R->lines.p + i;
        for (int s = lo; s <= hi; s++)
            if (ls->calls[s] && ls->wait_ms[s] / ls->calls[s] / 60000.0 > ymax)
                ymax = ls->wait_ms[s] / ls->calls[s] / 60000.0;
    }
    chart c;
    ch_begin(&c, f, "chart-wait", hi - lo + 1, ymax, "average wait (min)", false, false);
    for (int s = lo; s <= hi; s++) {
        char sn[6];
        slot_name(s, sn);
        if (s % 2 == 0 || hi - lo < 12)
            ch_xlabel(&c, s - lo, sn);
    }
    const char *names[HALL_MAX_ITEMS];
    const char *colors[HALL_MAX_ITEMS];
    int nn = 0;
    for (int i = 0; i < L.n && nn < HALL_MAX_ITEMS; i++) {
        const line_series *ls = line_of(R, L.id[i]);
        if (!ls)
            continue;
        bool any = false;
        for (int s = lo; s <= hi; s++)
            any = any || ls->calls[s];
        if (!any)
            continue;
        const char *color = PALETTE(i);
        /* Dashed through every point (slots without a call between them),
         * solid where the slots follow one another. */
        fprintf(f,
                "<polyline class=\"trend\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" "
                "stroke-dasharray=\"4 4\" points=\"",
                color);
        for (int s = lo; s <= hi; s++)
            if (ls->calls[s])
                fprintf(f, "%.1f,%.1f ", ch_x(&c, s - lo),
                        ch_y(&c, (double)(ls->wait_ms[s] / ls->calls[s]) / 60000.0));
        fputs("\"/>\n", f);
        for (int s = lo; s < hi; s++) {
            if (!ls->calls[s] || !ls->calls[s + 1] || (s > lo && ls->calls[s - 1]))
                continue;
            fprintf(f,
                    "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" "
                    "stroke-width=\"2.5\" points=\"",
                    color);
            for (int x = s; x <= hi && ls->calls[x]; x++)
                fprintf(f, "%.1f,%.1f ", ch_x(&c, x - lo),
                        ch_y(&c, (double)(ls->wait_ms[x] / ls->calls[x]) / 60000.0));
            fputs("\"/>\n", f);
        }
        for (int s = lo; s <= hi; s++) {
            if (!ls->calls[s])
                continue;
            char sn[6], tip[160], w[24];
            slot_name(s, sn);
            secs_text(w, sizeof w, ls->wait_ms[s] / ls->calls[s] / 1000);
            snprintf(tip, sizeof tip, "%s %s: %s average over %" PRId64 " calls", L.id[i], sn, w,
                     ls->calls[s]);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>",
                    ch_x(&c, s - lo), ch_y(&c, ls->wait_ms[s] / ls->calls[s] / 60000.0), color);
            put_s(f, tip, FMT_HTML);
            fputs("</title></circle>\n", f);
        }
        names[nn] = L.id[i];
        colors[nn++] = color;
    }
    if (!nn)
        ch_text(&c, c.w / 2.0, c.h / 2.0, "none", "no ticket was called on this day");
    ch_end(&c);
    legend(f, nn, names, colors);
}

static void chart_taken(FILE *f, const report *R)
{
    idlist L;
    ids_lines(R, &L);
    int lo, hi;
    hour_range(R, &lo, &hi);
    bool before = hour_has_data(R, BEFORE);
    int hours[HOURS + 1], nh = 0;
    if (before)
        hours[nh++] = BEFORE;
    for (int h = lo; h <= hi; h++)
        hours[nh++] = h;
    double ymax = 0;
    for (int j = 0; j < nh; j++) {
        double tot = 0;
        for (int i = 0; i < L.n; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            tot += ls ? (double)ls->taken[hours[j]] : 0;
        }
        ymax = tot > ymax ? tot : ymax;
    }
    chart c;
    ch_begin(&c, f, "chart-taken", nh, ymax, "tickets taken", false, true);
    const char *names[HALL_MAX_ITEMS], *colors[HALL_MAX_ITEMS];
    for (int j = 0; j < nh; j++) {
        char hn[8];
        hour_name(hours[j], hn);
        ch_xlabel(&c, j, hn);
        double base = 0, bw = ch_bw(&c) * 0.7;
        for (int i = 0; i < L.n; i++) {
            const line_series *ls = line_of(R, L.id[i]);
            if (!ls || !ls->taken[hours[j]])
                continue;
            char tip[96];
            snprintf(tip, sizeof tip, "%s at %s: %" PRId64 " taken", L.id[i], hn,
                     ls->taken[hours[j]]);
            ch_bar(&c, ch_x(&c, j) - bw / 2, bw, base, base + (double)ls->taken[hours[j]],
                   PALETTE(i), tip);
            base += (double)ls->taken[hours[j]];
        }
        if (base > 0) {
            char v[24];
            snprintf(v, sizeof v, "%.0f", base);
            ch_text(&c, ch_x(&c, j), ch_y(&c, base) - 4, "val", v);
        }
    }
    ch_end(&c);
    int nn = 0;
    for (int i = 0; i < L.n && nn < HALL_MAX_ITEMS; i++) {
        names[nn] = L.id[i];
        colors[nn++] = PALETTE(i);
    }
    legend(f, nn, names, colors);
}

static void chart_windows(FILE *f, const report *R)
{
    const msgpack_object *ws = get_map(&R->stats, "windows");
    int n = ws ? (int)ws->via.map.size : 0;
    double ymax = 0;
    for (int i = 0; i < n; i++) {
        int64_t v = 0;
        get_i64(&ws->via.map.ptr[i].val, "served", &v);
        ymax = (double)v > ymax ? (double)v : ymax;
    }
    chart c;
    ch_begin(&c, f, "chart-windows", n, ymax, "tickets served", false, true);
    for (int i = 0; i < n; i++) {
        char id[CELL], tip[160], lab[64], avg[24];
        int64_t served = 0, avg_s = 0;
        key_str(id, &ws->via.map.ptr[i].key);
        get_i64(&ws->via.map.ptr[i].val, "served", &served);
        get_i64(&ws->via.map.ptr[i].val, "service_avg_s", &avg_s);
        secs_text(avg, sizeof avg, avg_s);
        ch_xlabel(&c, i, id);
        snprintf(tip, sizeof tip, "%s: %" PRId64 " served, %s average service", id, served, avg);
        double bw = ch_bw(&c) * 0.5;
        if (served)
            ch_bar(&c, ch_x(&c, i) - bw / 2, bw, 0, (double)served, PALETTE(i), tip);
        snprintf(lab, sizeof lab, "%" PRId64 " \xc2\xb7 avg %s", served, avg);
        ch_text(&c, ch_x(&c, i), ch_y(&c, (double)served) - 5, "val", lab);
    }
    ch_end(&c);
}

static void chart_instant(FILE *f, const report *R)
{
    int lo, hi;
    hour_range(R, &lo, &hi);
    chart c;
    ch_begin(&c, f, "chart-instant", hi - lo + 1, 1.0, "instant rate", true, false);
    for (int h = lo; h <= hi; h++) {
        char hn[8], tip[128], lab[32];
        hour_name(h, hn);
        ch_xlabel(&c, h - lo, hn);
        int64_t n = intake_total(R, h);
        if (!n)
            continue;
        double rate = (double)R->intake[h][3] / (double)n, bw = ch_bw(&c) * 0.6;
        snprintf(tip, sizeof tip,
                 "%s: %" PRId64 " instant of %" PRId64 " outcomes (%" PRId64 " accepted, %" PRId64
                 " notified, %" PRId64 " refused)",
                 hn, R->intake[h][3], n, R->intake[h][0], R->intake[h][1], R->intake[h][2]);
        /* The hour's outcomes, as a light bar, the instant share in front. */
        ch_bar(&c, ch_x(&c, h - lo) - bw / 2, bw, 0, 1.0, "#dde6f0", tip);
        if (rate > 0)
            ch_bar(&c, ch_x(&c, h - lo) - bw / 2, bw, 0, rate, "#2ca02c", tip);
        snprintf(lab, sizeof lab, "%" PRId64 "/%" PRId64, R->intake[h][3], n);
        ch_text(&c, ch_x(&c, h - lo), ch_y(&c, rate) - 4, "val", lab);
    }
    double day_rate = figure_f64(R, "cases", NULL, "instant_rate");
    char lab[64];
    snprintf(lab, sizeof lab, "day %.1f%%", day_rate * 100);
    fprintf(f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" "
            "stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n",
            c.ml, ch_y(&c, day_rate), c.w - c.mr, ch_y(&c, day_rate));
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" class=\"val\" text-anchor=\"end\" fill=\"#d62728\">",
            c.w - c.mr - 4, ch_y(&c, day_rate) - 5);
    put_s(f, lab, FMT_HTML);
    fputs("</text>\n", f);
    ch_end(&c);
    const char *names[] = {"instant share of the hour's outcomes", "all outcomes",
                           "instant rate of the day"};
    const char *colors[] = {"#2ca02c", "#dde6f0", "#d62728"};
    legend(f, 3, names, colors);
}

static void chart_depts(FILE *f, const report *R)
{
    idlist D;
    ids_depts(R, &D);
    static const char *const what[] = {"in_review", "due_soon", "overdue", "overdue_marked"};
    static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#d62728", "#8c564b"};
    double ymax = 0;
    int64_t v[HALL_MAX_ITEMS * 2][4];
    for (int i = 0; i < D.n; i++) {
        const dept_series *ds = dept_of(R, D.id[i]);
        for (int k = 0; k < 3; k++)
            v[i][k] = figure_i64(R, "departments", D.id[i], what[k]);
        v[i][3] = ds ? ds->overdue_marks : 0;
        for (int k = 0; k < 4; k++)
            ymax = (double)v[i][k] > ymax ? (double)v[i][k] : ymax;
    }
    chart c;
    ch_begin(&c, f, "chart-depts", D.n, ymax, "cases", false, true);
    for (int i = 0; i < D.n; i++) {
        ch_xlabel(&c, i, D.id[i]);
        double bw = ch_bw(&c) * 0.8 / 4;
        for (int k = 0; k < 4; k++) {
            double x = ch_x(&c, i) - 2 * bw + k * bw;
            char tip[128], lab[24];
            snprintf(tip, sizeof tip, "%s %s: %" PRId64, D.id[i], what[k], v[i][k]);
            if (v[i][k])
                ch_bar(&c, x, bw - 2, 0, (double)v[i][k], colors[k], tip);
            snprintf(lab, sizeof lab, "%" PRId64, v[i][k]);
            ch_text(&c, x + bw / 2, ch_y(&c, (double)v[i][k]) - 4, "val", lab);
        }
    }
    ch_end(&c);
    const char *names[] = {"in review (day's end)", "due soon (day's end)", "overdue (day's end)",
                           "marked overdue during the day"};
    legend(f, 4, names, colors);
}

static void html_table_stats(FILE *f, const report *R, size_t s)
{
    table tb;
    table_load(&tb, R, sections[s][0], sections[s][1]);
    fprintf(f, "<h3>%s</h3>\n<table id=\"t-%s\">\n<tr>", tb.name, tb.name);
    if (tb.label)
        fprintf(f, "<th>%s</th>", tb.label);
    for (int c = 0; c < tb.ncols; c++) {
        fputs("<th>", f);
        put_s(f, tb.cols[c], FMT_HTML);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int r = 0; r < tb.nrows; r++) {
        char buf[CELL];
        fputs("<tr>", f);
        if (tb.label) {
            key_str(buf, tb.keys[r]);
            fputs("<th>", f);
            put_s(f, buf, FMT_HTML);
            fputs("</th>", f);
        }
        for (int c = 0; c < tb.ncols; c++) {
            table_cell(&tb, r, c, buf, FMT_HTML);
            fputs("<td>", f);
            put_s(f, buf, FMT_HTML);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void out_html(FILE *f, const report *R)
{
    char asof[20];
    audit_time_format(R->cfg, R->now_ms, asof);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; img-src data:\">\n<title>",
          f);
    put_s(f, R->cfg->name, FMT_HTML);
    fprintf(f, " \xe2\x80\x94 %s</title>\n", R->day_s);
    fputs("<style>\n"
          "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#222;"
          "background:#fafafa}\n"
          "h1{margin:0 0 4px 0;font-size:26px}h2{margin:28px 0 6px 0;font-size:19px;"
          "border-bottom:2px solid #ddd;padding-bottom:3px}h3{margin:14px 0 4px 0;"
          "font-size:15px}\n"
          ".sub{color:#555;margin-bottom:12px}\n"
          ".cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;"
          "border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}"
          ".card b{display:block;font-size:22px}.card span{color:#666;font-size:12px}\n"
          "svg.chart{background:#fff;border:1px solid #ddd;display:block}\n"
          "svg text{font-family:'DejaVu Sans',Arial,sans-serif}\n"
          ".ax{font-size:12px;fill:#444}.val{font-size:11px;fill:#222}"
          ".none{font-size:16px;fill:#888}\n"
          ".legend{margin:4px 0 8px 0;font-size:13px}.legend span{margin-right:16px}"
          ".legend i{display:inline-block;width:12px;height:12px;margin-right:5px;"
          "vertical-align:-1px}\n"
          "table{border-collapse:collapse;background:#fff;margin-bottom:8px;font-size:13px}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          "th{background:#f0f0f0}\n"
          "</style>\n</head>\n<body>\n<h1>",
          f);
    put_s(f, R->cfg->name, FMT_HTML);
    fprintf(f, "</h1>\n<div class=\"sub\">Statistics of <b>%s</b> as of %s (hall ", R->day_s, asof);
    put_s(f, R->cfg->hall_id, FMT_HTML);
    fprintf(f, "; %" PRIu64 " records on the day, replayed LSN 1..%" PRIu64 ")</div>\n",
            R->day_records, R->upto_lsn);

    int64_t taken = 0, served = 0, no_show = 0;
    const msgpack_object *lines = get_map(&R->stats, "lines");
    for (uint32_t i = 0; lines && i < lines->via.map.size; i++) {
        int64_t v;
        if (get_i64(&lines->via.map.ptr[i].val, "taken", &v))
            taken += v;
        if (get_i64(&lines->via.map.ptr[i].val, "served", &v))
            served += v;
        if (get_i64(&lines->via.map.ptr[i].val, "no_show", &v))
            no_show += v;
    }
    fprintf(f,
            "<div class=\"cards\">"
            "<div class=\"card\"><b>%" PRId64 "</b><span>tickets taken</span></div>"
            "<div class=\"card\"><b>%" PRId64 "</b><span>served</span></div>"
            "<div class=\"card\"><b>%" PRId64 "</b><span>no-show</span></div>"
            "<div class=\"card\"><b>%" PRId64 "</b><span>cases accepted</span></div>"
            "<div class=\"card\"><b>%.1f%%</b><span>instant rate (\xe5\x8d\xb3\xe5\x8a\x9e"
            "\xe7\x8e\x87)</span></div>"
            "<div class=\"card\"><b>%.1f%%</b><span>good ratings</span></div></div>\n",
            taken, served, no_show, figure_i64(R, "cases", NULL, "accepted"),
            figure_f64(R, "cases", NULL, "instant_rate") * 100,
            figure_f64(R, "ratings", NULL, "good_share") * 100);

    fputs("<h2>Waiting time by half hour, per line</h2>\n", f);
    chart_waits(f, R);
    fputs("<h2>Tickets taken per hour</h2>\n", f);
    chart_taken(f, R);
    fputs("<h2>Service per window</h2>\n", f);
    chart_windows(f, R);
    fputs("<h2>Instant rate (\xe5\x8d\xb3\xe5\x8a\x9e\xe7\x8e\x87) per hour</h2>\n", f);
    chart_instant(f, R);
    fputs("<h2>Deadlines per department</h2>\n", f);
    chart_depts(f, R);

    fputs("<h2>Every figure of the day</h2>\n", f);
    for (size_t s = 0; s < N_SECTIONS; s++)
        html_table_stats(f, R, s);
    fputs("</body>\n</html>\n", f);
}

/* ---- the command ---- */

static void report_usage(FILE *f)
{
    fputs("usage: hallq report --day YYYY-MM-DD [WAL] [--format text|csv|html] [--out FILE]\n"
          "  the day's statistics from the WAL alone: the figures of the admin op stats for\n"
          "  that day as at its end, and series by half hour, hour, window and department.\n"
          "  WAL: a log directory or a data dir holding wal/ (default ./hallq-data).\n"
          "  Exit 0 done, 1 failure (no record on that day, no such log), 2 usage.\n",
          f);
}

int audit_report(int ac, char **av)
{
    const char *path = NULL, *day_s = NULL, *format = "text", *out_path = NULL;
    for (int i = 0; i < ac; i++) {
        if (!strcmp(av[i], "--day") && i + 1 < ac)
            day_s = av[++i];
        else if (!strcmp(av[i], "--format") && i + 1 < ac)
            format = av[++i];
        else if (!strcmp(av[i], "--out") && i + 1 < ac)
            out_path = av[++i];
        else if (av[i][0] != '-' && !path)
            path = av[i];
        else
            return report_usage(stderr), RP_USAGE;
    }
    int fmt = !strcmp(format, "text")   ? FMT_TEXT
              : !strcmp(format, "csv")  ? FMT_CSV
              : !strcmp(format, "html") ? FMT_HTML
                                        : -1;
    if (!day_s || fmt < 0)
        return report_usage(stderr), RP_USAGE;
    report R;
    memset(&R, 0, sizeof R);
    if (hall_day_parse(day_s, strlen(day_s), &R.day) != 0) {
        fprintf(stderr, "hallq: --day %s: expected YYYY-MM-DD\n", day_s);
        return RP_USAGE;
    }
    R.lines.size = sizeof(line_series);
    R.windows.size = sizeof(window_series);
    R.depts.size = sizeof(dept_series);
    hall_day_format(R.day, R.day_s);
    char compact[9];
    hall_day_compact(R.day, compact);
    snprintf(R.prefix, sizeof R.prefix, "%s-", compact);

    char dir[PATH_MAX], err[1024], tmp[PATH_MAX] = "";
    audit_wal_dir(path, dir, sizeof dir);
    hall_config *first = audit_log_config(dir, err, sizeof err);
    if (!first) {
        fprintf(stderr, "hallq: %s\n", err);
        return RP_FAIL;
    }
    R.cal = &first->cal;
    R.day_start = hall_local_ms(R.cal, R.day, 0);
    R.day_end = hall_local_ms(R.cal, R.day + 1, 0) - 1;
    msgpack_zone_init(&R.zone, 4096);
    msgpack_zone_init(&R.szone, 4096);
    proto_buf_init(&R.sbuf);
    int code = RP_FAIL;
    hall_store st = {0};
    hall *h = NULL;
    FILE *out = NULL;

    audit_progress_init(&R.prog, "report: scanning LSN", 0);
    wal_scan_options so = {.dir = dir, .must_exist = true, .visit = scan_visit, .ctx = &R};
    wal_scan_result res;
    int rc = wal_scan(&so, &res);
    audit_progress_end(&R.prog);
    if (rc < 0) {
        if (rc == -ENOMEM)
            fprintf(stderr, "hallq: out of memory\n");
        else
            fprintf(stderr, "hallq: %s is damaged at %s offset %" PRIu64 " (LSN %" PRIu64 "): %s\n",
                    dir, res.bad_at.segment, res.bad_at.offset, res.bad_at.lsn,
                    res.message[0] ? res.message : wal_strerror(rc));
        goto out;
    }
    if (!R.day_records) {
        char t0[20] = "-", t1[20] = "-";
        if (res.records) {
            audit_time_format(first, (int64_t)res.first_at_ms, t0);
            audit_time_format(first, (int64_t)res.last_at_ms, t1);
        }
        fprintf(stderr, "hallq: no records on %s in %s (the log runs from %s to %s)\n", R.day_s,
                dir, t0, rc == SCAN_STOP ? "later" : t1);
        goto out;
    }

    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/hallq-report-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "hallq: mkdtemp %s: %s\n", tmp, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    if (read_stats(&R, dir, first, tmp, &st, &h, err, sizeof err) != 0) {
        fprintf(stderr, "hallq: replaying %s: %s\n", dir, err);
        goto out;
    }

    out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "hallq: --out %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    if (fmt == FMT_TEXT)
        out_text(out, &R);
    else if (fmt == FMT_CSV)
        out_csv(out, &R);
    else
        out_html(out, &R);
    int werr = ferror(out) ? (errno ? errno : EIO) : 0;
    if (out_path ? fclose(out) != 0 : fflush(out) != 0)
        werr = werr ? werr : errno;
    out = NULL;
    if (werr) {
        fprintf(stderr, "hallq: writing %s: %s\n", out_path ? out_path : "the report",
                strerror(werr));
        goto out;
    }
    code = RP_OK;
out:
    if (out && out_path)
        fclose(out);
    hall_close(h);
    if (st.env)
        hall_store_close(&st);
    if (tmp[0] && nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "hallq: removing %s: %s\n", tmp, strerror(errno));
    msgpack_zone_destroy(&R.zone);
    msgpack_zone_destroy(&R.szone);
    proto_buf_free(&R.sbuf);
    free(R.lines.p);
    free(R.windows.p);
    free(R.depts.p);
    free(R.tickets);
    hall_config_free(first);
    return code;
}
