/* tools/bench/mix.c: --mix hall, a busy hall against the demo hall.
 *
 * Kiosks (TCP, kiosk token, pipelined to --depth) take tickets on lines A,
 * B, C, D (45:30:12:8), and pickup tickets at F for every case that became
 * ready. Each window W01..W06 (TCP, its own token `window-Wxx`, one request
 * at a time, as a clerk works) opens, calls, records one or two intakes per
 * A/B visit (instant services `instant`; review services mostly `accept`,
 * some `notify` and `refuse`), ends the visit with window.done; W05 calls
 * the pickup tickets and delivers their cases. Each department (Unix
 * socket, `dept-xxx`) claims and decides (approve 9 in 10, else deny); a
 * decision that leaves the case approved or denied makes it ready for
 * pickup. So the proportions follow from the hall's flow, as in a real
 * hall: about as many calls and dones as takes, an intake per A/B ticket,
 * a claim and a decide per department of each accepted review case, a
 * pickup and a delivery per decided case. The run reports them.
 *
 * Kiosks hold back while a line has --backlog tickets waiting, so the
 * queues stay at a realistic length instead of growing with the run.
 * Every reply is checked: the envelope (hallq.c), and here each result's
 * fields: a call's ticket is of one of the window's lines, an accepted
 * intake has a case number, a claim's case is in review, a decision has a
 * state. A decision answered `conflict` is the hall's answer when another
 * department denied a joint-review case meanwhile: counted, not an error.
 * A window or department with nothing to do waits 1 ms, then
 * twice as long each time up to 64 ms (a department that reviews only
 * instant services, hrss in the demo hall, never has a case to claim).
 *
 * Random choices come from one xorshift generator seeded by --seed, so two
 * runs against equal servers send the same kinds of requests. */
#include "bench.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define N_WINDOWS 6
#define N_DEPTS 5
#define RING 8192               /* cases ready, pickups outstanding: far above a run's */
#define IDLE_NS 1000000ull      /* first wait of an idle window or department... */
#define IDLE_MAX_NS 64000000ull /* ...doubling up to this, as an adapter polls */

typedef struct window_def {
    const char *id, *lines;
} window_def;

static const window_def windows[N_WINDOWS] = {{"W01", "AB"}, {"W02", "AB"}, {"W03", "BA"},
                                              {"W04", "CD"}, {"W05", "F"},  {"W06", "ABC"}};
static const char *const depts[N_DEPTS] = {"mkt", "hrss", "pol", "res", "hsg"};

typedef struct service_def {
    const char *code;
    bool instant;
    const char *materials[6]; /* the checklist, NULL-terminated */
} service_def;

static const service_def services[] = {
    {"S01", false, {"M01", "M02", "M03"}}, {"S02", true, {"M02", "M04"}},
    {"S03", false, {"M02", "M04", "M05"}}, {"S04", false, {"M01", "M02", "M03", "M06", "M07"}},
    {"S05", false, {"M02", "M08", "M09"}}, {"S06", true, {"M02", "M10"}},
};
/* What each line's applicants come for (index into services[]). */
static const int line_a_services[] = {1, 1, 2, 4, 5, 5};
static const int line_b_services[] = {0, 0, 3};

static const char *const take_lines[] = {"A", "B", "C", "D"};
static const int take_weights[] = {45, 30, 12, 8};
static const char *const line_f = "F";

enum { W_OPEN, W_RESET, W_CALL, W_INTAKE, W_DELIVER, W_DONE };
enum { D_CLAIM, D_DECIDE };

typedef struct pickup {
    char ticket[MIX_NO_MAX], case_no[MIX_NO_MAX];
} pickup;

struct mix_state {
    uint64_t rng;
    int waiting[6]; /* tickets taken and not yet called, by line A..F */
    /* Cases ready for pickup, oldest first. */
    char ready[RING][MIX_NO_MAX];
    unsigned ready_head, ready_len;
    /* Pickup tickets taken and not yet called: which case each is for. */
    pickup picks[RING];
    unsigned picks_head, picks_len;
    uint64_t ok[MIX__COUNT];
    uint64_t cases, instant, decided, delivered, no_ticket, no_case;
    uint64_t moot; /* decisions answered conflict: the case was denied by another department */
};

static const char *const op_names[MIX__COUNT] = {
    [MIX_TAKE] = "ticket.take",     [MIX_PICKUP] = "ticket.take(F)",
    [MIX_STATE] = "window.state",   [MIX_CALL] = "window.call",
    [MIX_INTAKE] = "window.intake", [MIX_DONE] = "window.done",
    [MIX_DELIVER] = "case.deliver", [MIX_CLAIM] = "review.claim",
    [MIX_DECIDE] = "review.decide"};

const char *mix_op_name(int op)
{
    return op >= 0 && op < MIX__COUNT ? op_names[op] : "?";
}

static uint32_t rnd(mix_state *m, uint32_t n)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (uint32_t)((m->rng >> 11) % n);
}

/* Nothing to call or claim: wait, longer each time. */
static void idle(mix_conn *w)
{
    w->idle_ns = w->idle_ns ? w->idle_ns * 2 : IDLE_NS;
    if (w->idle_ns > IDLE_MAX_NS)
        w->idle_ns = IDLE_MAX_NS;
    w->wake_ns = now_ns() + w->idle_ns;
}

static int line_index(const char *line)
{
    return line[0] >= 'A' && line[0] <= 'F' && !line[1] ? line[0] - 'A' : -1;
}

int mix_init(bench *b)
{
    mix_state *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->rng = b->opt.seed ? b->opt.seed : 0x9e3779b97f4a7c15ull;
    b->mix = m;
    for (int i = 0; i < b->nconns; i++) {
        conn *c = &b->conns[i];
        int k = i - b->opt.conns;
        c->mix = (mix_conn){.role = ROLE_KIOSK};
        if (k < 0)
            continue;
        c->depth = 1;
        if (k < N_WINDOWS) {
            c->mix.role = ROLE_WINDOW;
            c->mix.who = k;
            c->mix.step = W_OPEN;
        } else {
            c->mix.role = ROLE_DEPT;
            c->mix.who = k - N_WINDOWS;
            c->mix.step = D_CLAIM;
            c->addr = (const struct sockaddr *)&b->unix_addr;
            c->addrlen = b->unix_len;
        }
    }
    return 0;
}

void mix_free(bench *b)
{
    free(b->mix);
    b->mix = NULL;
}

/* The hello token of a window or department connection. */
static const char *token_of(const conn *c, char *buf, size_t cap)
{
    if (c->mix.role == ROLE_WINDOW)
        snprintf(buf, cap, "window-%s", windows[c->mix.who].id);
    else if (c->mix.role == ROLE_DEPT)
        snprintf(buf, cap, "dept-%s", depts[c->mix.who]);
    else
        return c->token;
    return buf;
}

static bool mix_open(const bench *b, const conn *c, const pending *p, out *o)
{
    char tok[64];
    conn t = *c;
    t.token = token_of(c, tok, sizeof tok);
    return hallq_encode_hello(b, &t, p, o);
}

/* ---- requests ---- */

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    pack_str(pk, k);
    pack_str(pk, v);
}

static bool kiosk_next(bench *b, conn *c, pending *p, msgpack_packer *pk)
{
    mix_state *m = b->mix;
    (void)c;
    if (m->ready_len) {
        snprintf(p->arg, sizeof p->arg, "%s", m->ready[m->ready_head]);
        m->ready_head = (m->ready_head + 1) % RING;
        m->ready_len--;
        p->op = MIX_PICKUP;
        p->line = line_f;
        m->waiting[5]++;
        hallq_head(pk, p->id, "ticket.take", 2);
        pack_kv_str(pk, "line", "F");
        pack_kv_str(pk, "case_no", p->arg);
        return true;
    }
    uint32_t r = rnd(m, 95);
    int i = 0;
    while (r >= (uint32_t)take_weights[i]) {
        r -= (uint32_t)take_weights[i];
        i++;
    }
    if (m->waiting[i] >= b->opt.backlog)
        return false;
    m->waiting[i]++;
    p->op = MIX_TAKE;
    p->line = take_lines[i];
    hallq_head(pk, p->id, "ticket.take", 1);
    pack_kv_str(pk, "line", p->line);
    return true;
}

static void pack_intake(bench *b, conn *c, msgpack_packer *pk, uint64_t id)
{
    mix_state *m = b->mix;
    bool org = c->mix.line[0] == 'B';
    const int *pool = org ? line_b_services : line_a_services;
    uint32_t np = org ? 3 : 6;
    const service_def *s = &services[pool[rnd(m, np)]];
    int nm = 0;
    while (nm < 6 && s->materials[nm])
        nm++;
    uint32_t roll = rnd(m, 100);
    const char *outcome = s->instant  ? "instant"
                          : roll < 85 ? "accept"
                          : roll < 95 ? "notify"
                                      : "refuse";
    bool refuse = !strcmp(outcome, "refuse");
    if (!strcmp(outcome, "notify"))
        nm--; /* one document missing */
    hallq_head(pk, id, "window.intake", refuse ? 5 : 4);
    pack_kv_str(pk, "service", s->code);
    pack_str(pk, "applicant");
    char idbuf[24], name[24];
    msgpack_pack_map(pk, org ? 3 : 2);
    pack_kv_str(pk, "kind", org ? "org" : "person");
    if (org) {
        snprintf(idbuf, sizeof idbuf, "91110000%010u", rnd(m, 1000000000));
        snprintf(name, sizeof name, "Shop %u", rnd(m, 10000));
        pack_kv_str(pk, "id", idbuf);
        pack_kv_str(pk, "name", name);
    } else {
        snprintf(idbuf, sizeof idbuf, "1101011990%08u", rnd(m, 100000000));
        pack_kv_str(pk, "id", idbuf);
    }
    pack_str(pk, "materials");
    msgpack_pack_array(pk, (size_t)nm);
    for (int i = 0; i < nm; i++)
        pack_str(pk, s->materials[i]);
    pack_kv_str(pk, "outcome", outcome);
    if (refuse)
        pack_kv_str(pk, "reason", "not in this hall's remit (bench)");
}

static bool window_next(bench *b, conn *c, pending *p, msgpack_packer *pk)
{
    mix_conn *w = &c->mix;
    switch (w->step) {
    case W_OPEN:
        p->op = MIX_STATE;
        hallq_head(pk, p->id, "window.state", 1);
        pack_kv_str(pk, "state", "open");
        return true;
    case W_RESET:
        /* A visit left open by an earlier run on this data dir ends now;
         * `conflict` (no current ticket) is the usual answer. */
        p->op = MIX_DONE;
        snprintf(p->arg, sizeof p->arg, "reset");
        hallq_head(pk, p->id, "window.done", 0);
        return true;
    case W_CALL:
        if (now_ns() < w->wake_ns)
            return false;
        p->op = MIX_CALL;
        hallq_head(pk, p->id, "window.call", 0);
        return true;
    case W_INTAKE:
        p->op = MIX_INTAKE;
        pack_intake(b, c, pk, p->id);
        return true;
    case W_DELIVER:
        p->op = MIX_DELIVER;
        snprintf(p->arg, sizeof p->arg, "%s", w->case_no);
        hallq_head(pk, p->id, "case.deliver", 2);
        pack_kv_str(pk, "case_no", w->case_no);
        pack_kv_str(pk, "method", "counter");
        return true;
    default:
        p->op = MIX_DONE;
        hallq_head(pk, p->id, "window.done", 0);
        return true;
    }
}

static bool dept_next(bench *b, conn *c, pending *p, msgpack_packer *pk)
{
    mix_conn *d = &c->mix;
    if (d->step == D_CLAIM) {
        if (now_ns() < d->wake_ns)
            return false;
        p->op = MIX_CLAIM;
        hallq_head(pk, p->id, "review.claim", 0);
        return true;
    }
    bool deny = rnd(b->mix, 10) == 0;
    p->op = MIX_DECIDE;
    snprintf(p->arg, sizeof p->arg, "%s", d->case_no);
    hallq_head(pk, p->id, "review.decide", deny ? 3 : 2);
    pack_kv_str(pk, "case_no", d->case_no);
    pack_kv_str(pk, "decision", deny ? "deny" : "approve");
    if (deny)
        pack_kv_str(pk, "reason", "incomplete premises proof (bench)");
    return true;
}

static bool mix_next(bench *b, conn *c, pending *p, out *o)
{
    msgpack_packer pk;
    size_t at;
    size_t start = o->len;
    hallq_begin(o, &pk, &at);
    bool any = c->mix.role == ROLE_KIOSK    ? kiosk_next(b, c, p, &pk)
               : c->mix.role == ROLE_WINDOW ? window_next(b, c, p, &pk)
                                            : dept_next(b, c, p, &pk);
    if (!any) {
        o->len = start;
        o->overflow = false;
        return false;
    }
    hallq_end(o, at);
    return true;
}

/* ---- replies ---- */

static bool fail_field(reply *r, const pending *p, const char *what)
{
    snprintf(r->text, sizeof r->text, "%s %" PRIu64 ": %s", op_names[p->op], p->id, what);
    return false;
}

static bool picks_find(mix_state *m, const char *ticket, char *case_no)
{
    for (unsigned i = 0; i < m->picks_len; i++) {
        pickup *k = &m->picks[(m->picks_head + i) % RING];
        if (!strcmp(k->ticket, ticket)) {
            snprintf(case_no, MIX_NO_MAX, "%s", k->case_no);
            /* Keep the ring dense: move the oldest into the hole. */
            *k = m->picks[m->picks_head];
            m->picks_head = (m->picks_head + 1) % RING;
            m->picks_len--;
            return true;
        }
    }
    return false;
}

static void ready_push(mix_state *m, const char *case_no)
{
    if (m->ready_len == RING)
        return; /* no kiosk picks up: never in a run of minutes */
    snprintf(m->ready[(m->ready_head + m->ready_len) % RING], MIX_NO_MAX, "%s", case_no);
    m->ready_len++;
}

static bool kiosk_result(bench *b, const pending *p, const msgpack_object *res, reply *r)
{
    mix_state *m = b->mix;
    const msgpack_object *num = mp_get(res, "number");
    char tid[MIX_NO_MAX];
    if (!mp_is_str(num) || num->via.str.size < 2 || num->via.str.ptr[0] != p->line[0])
        return fail_field(r, p, "no number of the line asked");
    if (!mp_copy_str(mp_get(res, "ticket_id"), tid, sizeof tid))
        return fail_field(r, p, "no ticket_id");
    if (p->op == MIX_PICKUP && m->picks_len < RING) {
        pickup *k = &m->picks[(m->picks_head + m->picks_len) % RING];
        snprintf(k->ticket, sizeof k->ticket, "%s", tid);
        snprintf(k->case_no, sizeof k->case_no, "%s", p->arg);
        m->picks_len++;
    }
    return true;
}

static bool window_result(bench *b, conn *c, const pending *p, const msgpack_object *res, reply *r)
{
    mix_state *m = b->mix;
    mix_conn *w = &c->mix;
    const window_def *wd = &windows[w->who];
    switch (p->op) {
    case MIX_STATE:
        w->step = W_RESET;
        return true;
    case MIX_CALL: {
        const msgpack_object *t = mp_get(res, "ticket");
        if (!t)
            return fail_field(r, p, "no ticket field");
        if (t->type == MSGPACK_OBJECT_NIL) {
            idle(w);
            m->no_ticket++;
            return true;
        }
        w->idle_ns = 0;
        if (!mp_copy_str(mp_get(t, "line"), w->line, sizeof w->line) ||
            !strchr(wd->lines, w->line[0]))
            return fail_field(r, p, "a ticket of a line this window does not serve");
        if (!mp_copy_str(mp_get(t, "ticket_id"), w->ticket, sizeof w->ticket))
            return fail_field(r, p, "ticket without ticket_id");
        int li = line_index(w->line);
        if (li >= 0 && m->waiting[li] > 0)
            m->waiting[li]--;
        if (w->line[0] == 'F') {
            w->step = picks_find(m, w->ticket, w->case_no) ? W_DELIVER : W_DONE;
        } else if (w->line[0] == 'A' || w->line[0] == 'B') {
            w->intakes = rnd(m, 10) == 0 ? 2 : 1;
            w->step = W_INTAKE;
        } else {
            w->step = W_DONE;
        }
        return true;
    }
    case MIX_INTAKE: {
        const msgpack_object *no = mp_get(res, "case_no");
        if (no && no->type != MSGPACK_OBJECT_NIL) {
            if (!mp_is_str(no))
                return fail_field(r, p, "case_no is not a string");
            m->cases++;
        }
        w->step = --w->intakes > 0 ? W_INTAKE : W_DONE;
        return true;
    }
    case MIX_DELIVER:
        m->delivered++;
        w->step = W_DONE;
        return true;
    default:
        w->step = W_CALL;
        return true;
    }
}

static bool dept_result(bench *b, conn *c, const pending *p, const msgpack_object *res, reply *r)
{
    mix_state *m = b->mix;
    mix_conn *d = &c->mix;
    if (p->op == MIX_CLAIM) {
        const msgpack_object *cs = mp_get(res, "case");
        if (!cs)
            return fail_field(r, p, "no case field");
        if (cs->type == MSGPACK_OBJECT_NIL) {
            idle(d);
            m->no_case++;
            return true;
        }
        d->idle_ns = 0;
        if (!mp_copy_str(mp_get(cs, "case_no"), d->case_no, sizeof d->case_no))
            return fail_field(r, p, "a case without case_no");
        if (!mp_get(res, "lease_until_ms"))
            return fail_field(r, p, "a claim without lease_until_ms");
        d->step = D_DECIDE;
        return true;
    }
    const msgpack_object *st = mp_get(res, "state");
    if (!mp_is_str(st))
        return fail_field(r, p, "no state");
    m->decided++;
    if (mp_str_eq(st, "approved") || mp_str_eq(st, "denied"))
        ready_push(m, p->arg);
    d->step = D_CLAIM;
    return true;
}

/* After an error reply the role goes back to a step that is always valid. */
static void after_error(bench *b, conn *c, const pending *p)
{
    mix_conn *w = &c->mix;
    int li = line_index(p->line);
    if (w->role == ROLE_KIOSK && li >= 0 && b->mix->waiting[li] > 0)
        b->mix->waiting[li]--;
    if (w->role == ROLE_WINDOW)
        w->step = p->op == MIX_CALL                         ? W_OPEN
                  : p->op == MIX_STATE || p->op == MIX_DONE ? W_CALL
                                                            : W_DONE;
    if (w->role == ROLE_DEPT)
        w->step = D_CLAIM;
    idle(w);
}

static ssize_t mix_parse(bench *b, conn *c, const pending *p, const uint8_t *buf, size_t n,
                         reply *r)
{
    const msgpack_object *res;
    ssize_t used = hallq_parse_frame(b, p, buf, n, r, &res);
    if (used <= 0 || p->open)
        return used;
    if (!r->ok && p->op == MIX_DONE && !strcmp(p->arg, "reset") && !strcmp(r->code, "conflict")) {
        r->ok = true; /* nothing was left open: the answer expected */
        c->mix.step = W_CALL;
        return used;
    }
    if (!r->ok && p->op == MIX_DECIDE && !strcmp(r->code, "conflict")) {
        /* Joint review: another department denied the case meanwhile,
         * which ends this department's claim. The hall's right answer. */
        r->ok = true;
        b->mix->moot++;
        c->mix.step = D_CLAIM;
        return used;
    }
    if (!r->ok) {
        after_error(b, c, p);
        return used;
    }
    bool good = c->mix.role == ROLE_KIOSK    ? kiosk_result(b, p, res, r)
                : c->mix.role == ROLE_WINDOW ? window_result(b, c, p, res, r)
                                             : dept_result(b, c, p, res, r);
    if (!good)
        return -1;
    b->mix->ok[p->op]++;
    return used;
}

const proto proto_mix = {"mix", mix_open, mix_next, mix_parse};

/* ---- report ---- */

void mix_report_json(const bench *b, FILE *f)
{
    const mix_state *m = b->mix;
    fprintf(f, ", \"by_op\": {");
    bool first = true;
    for (int i = 0; i < MIX__COUNT; i++) {
        const hist *h = &b->op_lat[i];
        if (!m->ok[i])
            continue;
        fprintf(f,
                "%s\"%s\": {\"ok\": %" PRIu64 ", \"measured\": %" PRIu64
                ", \"p50_ms\": %.3f, \"p99_ms\": %.3f}",
                first ? "" : ", ", op_names[i], m->ok[i], h->n, (double)hist_pct(h, 50) / 1e6,
                (double)hist_pct(h, 99) / 1e6);
        first = false;
    }
    fprintf(f,
            "}, \"cases\": %" PRIu64 ", \"decided\": %" PRIu64 ", \"delivered\": %" PRIu64
            ", \"empty_calls\": %" PRIu64 ", \"empty_claims\": %" PRIu64
            ", \"moot_decisions\": %" PRIu64,
            m->cases, m->decided, m->delivered, m->no_ticket, m->no_case, m->moot);
}

void mix_report_text(const bench *b, FILE *f)
{
    const mix_state *m = b->mix;
    uint64_t all = 0;
    for (int i = 0; i < MIX__COUNT; i++)
        all += m->ok[i];
    fprintf(f, "  %-15s %9s %6s %9s %9s\n", "op", "ok", "share", "p50_ms", "p99_ms");
    for (int i = 0; i < MIX__COUNT; i++) {
        const hist *h = &b->op_lat[i];
        if (!m->ok[i])
            continue;
        if (!h->n) {
            fprintf(f, "  %-15s %9" PRIu64 " %5.1f%% %9s %9s\n", op_names[i], m->ok[i],
                    all ? 100.0 * (double)m->ok[i] / (double)all : 0, "-", "-");
            continue;
        }
        fprintf(f, "  %-15s %9" PRIu64 " %5.1f%% %9.3f %9.3f\n", op_names[i], m->ok[i],
                all ? 100.0 * (double)m->ok[i] / (double)all : 0, (double)hist_pct(h, 50) / 1e6,
                (double)hist_pct(h, 99) / 1e6);
    }
    fprintf(f,
            "  cases %" PRIu64 ", decisions %" PRIu64 ", delivered %" PRIu64
            "; calls with no ticket %" PRIu64 ", claims with no case %" PRIu64
            ", decisions moot (denied elsewhere) %" PRIu64 "\n",
            m->cases, m->decided, m->delivered, m->no_ticket, m->no_case, m->moot);
}
