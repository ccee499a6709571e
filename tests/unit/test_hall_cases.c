/* tests/unit/test_hall_cases.c: stages 2 and 3 of the hall, with the clock
 * in the test's hand: intake outcomes and the checklist, deadlines in
 * working days (weekends, the October holiday, the extra working Saturday),
 * leases, joint review, supplements, issuance, ratings, not_found, and the
 * stats of a scripted day checked figure by figure. Every scenario is
 * replayed at the end (hall_fixture.h). */
#include "hall_fixture.h"

#include "daemon/hall/hall_internal.h" /* the events of the last record (h->ev) */

#define TUE(hh, mm) fx_at(2026, 11, 24, hh, mm)
#define S ((int64_t)1000)

/* Takes a ticket on `line`, opens window w and calls it: w has a current
 * ticket. Returns its id. */
static const char *serve(fixture *f, int64_t now, const char *w, const char *line)
{
    const char *id = fx_take(f, now, line, NULL);
    fx_open_window(f, now, w);
    fx_ok(f, "window.call", WIN(w), now, NULL);
    assert_string_equal(fx_str(f, "ticket.ticket_id"), id);
    return id;
}

static int intake(fixture *f, int64_t now, const char *w, const char *svc, const char *mats,
                  const char *outcome, const char *extra)
{
    char json[400];
    snprintf(json, sizeof json,
             "{service: %s, applicant: {kind: person, id: '110101199001011234'}, materials: %s, "
             "outcome: %s%s}",
             svc, mats, outcome, extra ? extra : "");
    return fx_do(f, "window.intake", WIN(w), now, json);
}

/* Accepts svc at window w (with a ticket of its own); returns the case_no. */
static const char *accept_case(fixture *f, int64_t now, const char *w, const char *svc,
                               const char *mats)
{
    static char nos[8][32];
    static int next;
    serve(f, now, w, "A");
    if (intake(f, now, w, svc, mats, "accept", NULL) < 0)
        fail_msg("accept %s: %s", svc, f->e.msg);
    char *b = nos[next++ % 8];
    snprintf(b, 32, "%s", fx_str(f, "case_no"));
    fx_ok(f, "window.done", WIN(w), now, NULL);
    return b;
}

static void case_get(fixture *f, int64_t now, const char *no)
{
    char json[64];
    snprintf(json, sizeof json, "{case_no: '%s'}", no);
    fx_ok(f, "case.get", KIOSK, now, json);
}

static void decide(fixture *f, int64_t now, const char *dept, const char *no, const char *rest)
{
    char json[200];
    snprintf(json, sizeof json, "{case_no: '%s', %s}", no, rest);
    fx_ok(f, "review.decide", DEPT(dept), now, json);
}

static void claim(fixture *f, int64_t now, const char *dept, const char *want_no)
{
    fx_ok(f, "review.claim", DEPT(dept), now, NULL);
    if (!want_no) {
        assert_true(fx_nil(f, "case"));
        assert_null(fx_get(f, "lease_until_ms"));
        return;
    }
    assert_string_equal(fx_str(f, "case.case_no"), want_no);
    assert_int_equal(fx_int(f, "lease_until_ms"), now + 300 * S);
}

#define S01_ALL "[M01, M02, M03]"
#define S04_ALL "[M01, M02, M03, M06, M07]"

static void test_intake_outcomes(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    fx_open_window(f, TUE(9, 0), "W01");
    fx_err(f, "window.intake", WIN("W01"), TUE(9, 0),
           "{service: S01, applicant: {kind: org, id: '91110000X'}, materials: [M01, M02, M03], "
           "outcome: accept}",
           PROTO_E_CONFLICT, "no current ticket");
    const char *tid = serve(f, TUE(10, 0), "W01", "B");
    assert_int_equal(intake(f, TUE(10, 1), "W01", "S01", S01_ALL, "accept", NULL), 0);
    assert_string_equal(fx_str(f, "case_no"), "20261124-0001");
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 11, 27, 17, 0)); /* Wed Thu Fri */
    assert_null(fx_get(f, "missing"));
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 1), "{ticket_id: 20261124-B001}");
    assert_string_equal(fx_str(f, "state"), "serving");

    /* One visit, several applications, against the same ticket. */
    assert_int_equal(intake(f, TUE(10, 2), "W01", "S03", "[M02]", "notify", NULL), 0);
    assert_int_equal(fx_len(f, ""), 1);
    assert_int_equal(fx_len(f, "missing"), 2);
    assert_string_equal(fx_str(f, "missing.0"), "M04");
    assert_string_equal(fx_str(f, "missing.1"), "M05");
    assert_int_equal(
        intake(f, TUE(10, 3), "W01", "S05", "[M02]", "refuse", ", reason: 'not this hall'"), 0);
    assert_int_equal(fx_len(f, ""), 0);
    assert_int_equal(intake(f, TUE(10, 4), "W01", "S02", "[M04, M02]", "instant", NULL), 0);
    assert_string_equal(fx_str(f, "case_no"), "20261124-0002");
    assert_null(fx_get(f, "deadline_ms"));
    fx_ok(f, "window.done", WIN("W01"), TUE(10, 5), NULL);
    char json[64];
    snprintf(json, sizeof json, "{ticket_id: '%s'}", tid);
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 5), json);
    assert_string_equal(fx_str(f, "state"), "done");

    case_get(f, TUE(10, 6), "20261124-0001");
    assert_string_equal(fx_str(f, "service"), "S01");
    assert_string_equal(fx_str(f, "state"), "review");
    assert_int_equal(fx_len(f, "departments"), 1);
    assert_string_equal(fx_str(f, "departments.0.department"), "mkt");
    assert_string_equal(fx_str(f, "departments.0.state"), "pending");
    assert_int_equal(fx_int(f, "accepted_ms"), TUE(10, 1));
    assert_false(fx_int(f, "ready"));
    assert_false(fx_int(f, "due_soon"));
    assert_false(fx_int(f, "overdue"));
    assert_false(fx_int(f, "delivered"));
    case_get(f, TUE(10, 6), "20261124-0002");
    assert_string_equal(fx_str(f, "state"), "approved");
    assert_string_equal(fx_str(f, "departments.0.department"), "hrss");
    assert_string_equal(fx_str(f, "departments.0.state"), "approved");
    assert_true(fx_int(f, "ready"));
    /* An instant case never waits in review. */
    claim(f, TUE(10, 7), "hrss", NULL);
    fx_ok(f, "stats", ADMIN, TUE(10, 8), NULL);
    assert_int_equal(fx_int(f, "cases.accepted"), 1);
    assert_int_equal(fx_int(f, "cases.notified"), 1);
    assert_int_equal(fx_int(f, "cases.refused"), 1);
    assert_int_equal(fx_int(f, "cases.instant"), 1);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 1);
    fx_free(f);
}

static void test_checklist_rules(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    serve(f, TUE(10, 0), "W02", "B");
    struct {
        const char *svc, *mats, *outcome, *extra;
        proto_err code;
        const char *needle;
    } bad[] = {
        {"S01", "[M01, M02]", "accept", NULL, PROTO_E_CHECKLIST, "M03"},
        {"S04", "[M01, M02, M03]", "accept", NULL, PROTO_E_CHECKLIST, "M06, M07"},
        {"S01", S01_ALL, "notify", NULL, PROTO_E_CHECKLIST, "nothing missing"},
        {"S01", S01_ALL, "instant", NULL, PROTO_E_CHECKLIST, "review service"},
        {"S02", "[M02]", "instant", NULL, PROTO_E_CHECKLIST, "M04"},
        {"S01", "[M01]", "refuse", NULL, PROTO_E_BAD_REQUEST, "args.reason"},
        {"S01", "[M01]", "refuse", ", reason: ''", PROTO_E_BAD_REQUEST, "args.reason"},
        {"S01", S01_ALL, "maybe", NULL, PROTO_E_BAD_REQUEST, "args.outcome"},
        {"S99", S01_ALL, "accept", NULL, PROTO_E_NOT_FOUND, "args.service"},
        {"S01", "M01", "accept", NULL, PROTO_E_BAD_REQUEST, "args.materials"},
        {"S01", "[M01, 7]", "accept", NULL, PROTO_E_BAD_REQUEST, "args.materials"},
        {NULL, NULL, NULL, NULL, 0, NULL},
    };
    for (int i = 0; bad[i].svc; i++) {
        if (intake(f, TUE(10, 1), "W02", bad[i].svc, bad[i].mats, bad[i].outcome, bad[i].extra) >=
            0)
            fail_msg("case %d should fail", i);
        if (f->e.code != bad[i].code || !strstr(f->e.msg, bad[i].needle))
            fail_msg("case %d: %s '%s', want %s '%s'", i, proto_err_name(f->e.code), f->e.msg,
                     proto_err_name(bad[i].code), bad[i].needle);
    }
    fx_err(f, "window.intake", WIN("W02"), TUE(10, 1),
           "{service: S01, materials: [M01], outcome: notify}", PROTO_E_BAD_REQUEST,
           "args.applicant");
    fx_err(f, "window.intake", WIN("W02"), TUE(10, 1),
           "{service: S01, applicant: {kind: robot, id: x1}, materials: [M01], outcome: notify}",
           PROTO_E_BAD_REQUEST, "args.applicant.kind");
    fx_err(f, "window.intake", WIN("W02"), TUE(10, 1),
           "{service: S01, applicant: {kind: org}, materials: [M01], outcome: notify}",
           PROTO_E_BAD_REQUEST, "args.applicant.id");
    fx_err(f, "window.intake", WIN("W02"), TUE(10, 1),
           "{service: S01, applicant: {kind: org, id: x1}, outcome: notify}", PROTO_E_BAD_REQUEST,
           "args.materials");
    /* Extra materials are no reason to refuse an accept. */
    assert_int_equal(intake(f, TUE(10, 2), "W02", "S01", "[M09, M03, M02, M01]", "accept", NULL),
                     0);
    /* None of the refused intakes counted or numbered anything. */
    assert_string_equal(fx_str(f, "case_no"), "20261124-0001");
    fx_ok(f, "stats", ADMIN, TUE(10, 3), NULL);
    assert_int_equal(fx_int(f, "cases.accepted"), 1);
    assert_int_equal(
        fx_int(f, "cases.notified") + fx_int(f, "cases.refused") + fx_int(f, "cases.instant"), 0);
    fx_free(f);
}

static void test_deadlines_calendar(void **state)
{
    (void)state;
    fixture *f = fx_new(fx_at(2026, 9, 28, 8, 0));
    /* Mon 09-28, 7 days: 29, 30, (holiday 10-01..07), 8, 9, Sat 10, 12, 13. */
    const char *e = accept_case(f, fx_at(2026, 9, 28, 10, 0), "W01", "S03", "[M02, M04, M05]");
    case_get(f, fx_at(2026, 9, 28, 10, 1), e);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 10, 13, 17, 0));
    /* Wed 09-30, 3 days: over the holiday to the extra Saturday. */
    const char *a = accept_case(f, fx_at(2026, 9, 30, 16, 59), "W01", "S01", S01_ALL);
    case_get(f, fx_at(2026, 9, 30, 16, 59), a);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 10, 10, 17, 0));
    /* Fri 10-09, 5 days: Sat 10, 12, 13, 14, 15. */
    const char *b = accept_case(f, fx_at(2026, 10, 9, 10, 0), "W01", "S05", "[M02, M08, M09]");
    case_get(f, fx_at(2026, 10, 9, 10, 0), b);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 10, 15, 17, 0));

    /* Case a turns due_soon at the opening of its deadline day. */
    case_get(f, fx_at(2026, 10, 10, 8, 59), a);
    assert_false(fx_int(f, "due_soon"));
    case_get(f, fx_at(2026, 10, 10, 9, 0), a);
    assert_true(fx_int(f, "due_soon"));
    assert_false(fx_int(f, "overdue"));
    fx_ok(f, "stats", ADMIN, fx_at(2026, 10, 10, 9, 0), NULL);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 1);
    assert_int_equal(fx_int(f, "departments.mkt.due_soon"), 1);
    assert_int_equal(fx_int(f, "departments.mkt.overdue"), 0);
    assert_int_equal(fx_int(f, "departments.pol.due_soon"), 0);

    /* Accepted on the extra Saturday itself: 12, 13, 14. */
    const char *c = accept_case(f, fx_at(2026, 10, 10, 10, 0), "W01", "S01", S01_ALL);
    case_get(f, fx_at(2026, 10, 10, 10, 0), c);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 10, 14, 17, 0));

    /* Overdue 1 ms after the deadline, not at it. */
    case_get(f, fx_at(2026, 10, 10, 17, 0), a);
    assert_false(fx_int(f, "overdue"));
    case_get(f, fx_at(2026, 10, 10, 17, 0) + 1, a);
    assert_true(fx_int(f, "overdue"));
    fx_ok(f, "stats", ADMIN, fx_at(2026, 10, 10, 17, 0) + 1, NULL);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 2);
    assert_int_equal(fx_int(f, "departments.mkt.due_soon"), 0);
    assert_int_equal(fx_int(f, "departments.mkt.overdue"), 1);
    assert_int_equal(fx_int(f, "departments.res.in_review"), 1);
    assert_int_equal(fx_int(f, "departments.pol.in_review"), 1);

    /* A weekend: Thu 11-26, 3 days: Fri 27, Mon 30, Tue 12-01. */
    const char *d = accept_case(f, fx_at(2026, 11, 26, 11, 0), "W01", "S01", S01_ALL);
    case_get(f, fx_at(2026, 11, 26, 11, 0), d);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 12, 1, 17, 0));
    assert_string_equal(d, "20261126-0001"); /* numbers restart each day */
    fx_free(f);
}

static void test_leases(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *x = accept_case(f, TUE(10, 0), "W01", "S01", S01_ALL);
    const char *y = accept_case(f, TUE(10, 1), "W01", "S01", S01_ALL);
    claim(f, TUE(10, 5), "mkt", x); /* same deadline: by case number */
    assert_string_equal(fx_str(f, "case.departments.0.state"), "claimed");
    claim(f, TUE(10, 6), "mkt", y);
    claim(f, TUE(10, 7), "mkt", NULL);
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 7), "{state: claimed}");
    assert_int_equal(fx_len(f, "cases"), 2);
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 7), "{state: pending}");
    assert_int_equal(fx_len(f, "cases"), 0);
    fx_err(f, "review.list", DEPT("mkt"), TUE(10, 7), "{state: lost}", PROTO_E_BAD_REQUEST,
           "args.state");
    fx_err(f, "review.list", DEPT("mkt"), TUE(10, 7), "{limit: 0}", PROTO_E_BAD_REQUEST,
           "args.limit");
    fx_ok(f, "stats", ADMIN, TUE(10, 7), NULL);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 2); /* claimed counts */

    /* x's lease runs to 10:10:00; at that instant it is back in review. */
    int n_due = f->n_due;
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 10) - 1, "{state: pending}");
    assert_int_equal(fx_len(f, "cases"), 0);
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 10), "{state: pending}");
    assert_int_equal(f->n_due, n_due + 1);
    assert_int_equal(fx_len(f, "cases"), 1);
    assert_string_equal(fx_str(f, "cases.0.case_no"), x);
    assert_string_equal(fx_str(f, "cases.0.departments.0.state"), "pending");
    char json[96];
    snprintf(json, sizeof json, "{case_no: '%s', decision: approve}", x);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 10), json, PROTO_E_CONFLICT, "not claimed");
    /* y's lease is still running: deciding it is fine. */
    decide(f, TUE(10, 10), "mkt", y, "decision: approve");
    assert_string_equal(fx_str(f, "state"), "approved");
    /* Claimed again after the expiry: a new lease. */
    claim(f, TUE(10, 12), "mkt", x);
    decide(f, TUE(10, 13), "mkt", x, "decision: deny, reason: 'no premises'");
    assert_string_equal(fx_str(f, "state"), "denied");
    /* Deciding a decided case, or one never claimed, is conflict. */
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 14), json, PROTO_E_CONFLICT,
           "is denied: nothing to decide"); /* not "claim it first" */
    const char *z = accept_case(f, TUE(10, 15), "W01", "S01", S01_ALL);
    snprintf(json, sizeof json, "{case_no: '%s', decision: approve}", z);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 16), json, PROTO_E_CONFLICT, "not claimed");
    /* Another department's case: forbidden, to decide and to read. */
    fx_err(f, "review.decide", DEPT("hrss"), TUE(10, 16), json, PROTO_E_FORBIDDEN, "hrss");
    snprintf(json, sizeof json, "{case_no: '%s'}", z);
    fx_err(f, "case.get", DEPT("hrss"), TUE(10, 16), json, PROTO_E_FORBIDDEN, "hrss");
    fx_ok(f, "case.get", DEPT("mkt"), TUE(10, 16), json);
    fx_ok(f, "review.list", DEPT("hrss"), TUE(10, 16), NULL);
    assert_int_equal(fx_len(f, "cases"), 0);
    fx_free(f);
}

/* "Most urgent" (PROTOCOL.md, review.claim): the earliest deadline first
 * (so an overdue case before any other), then the earliest case number;
 * the acceptance time alone does not count. */
static void test_claim_takes_the_most_urgent(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *x = accept_case(f, TUE(10, 0), "W01", "S01", S01_ALL); /* due Fri */
    char xs[32];
    snprintf(xs, sizeof xs, "%s", x);
    /* Monday after: x is overdue. A 10-day case accepted first, a 3-day
     * one after it, then another 3-day one. */
    int64_t mon = fx_at(2026, 11, 30, 10, 0);
    const char *a = accept_case(f, mon, "W01", "S04", S04_ALL);
    const char *b = accept_case(f, mon + 60 * S, "W01", "S01", S01_ALL);
    const char *c = accept_case(f, mon + 120 * S, "W01", "S01", S01_ALL);
    char as[32], bs[32], cs[32];
    snprintf(as, sizeof as, "%s", a);
    snprintf(bs, sizeof bs, "%s", b);
    snprintf(cs, sizeof cs, "%s", c);
    claim(f, mon + 180 * S, "mkt", xs);
    assert_true(fx_int(f, "case.overdue"));
    claim(f, mon + 181 * S, "mkt", bs); /* earlier deadline than a, accepted later */
    claim(f, mon + 182 * S, "mkt", cs); /* b's deadline: by case number */
    claim(f, mon + 183 * S, "mkt", as);
    claim(f, mon + 184 * S, "mkt", NULL);
    fx_free(f);
}

/* review.decide says why it cannot (issue 17): a department that decided
 * already is told so, not "claim it first". */
static void test_decide_again_says_decided(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *no = accept_case(f, TUE(10, 0), "W01", "S04", S04_ALL);
    claim(f, TUE(10, 1), "mkt", no);
    decide(f, TUE(10, 2), "mkt", no, "decision: approve");
    assert_string_equal(fx_str(f, "state"), "review"); /* res and hsg to go */
    char json[96];
    snprintf(json, sizeof json, "{case_no: '%s', decision: deny, reason: x}", no);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 3), json, PROTO_E_CONFLICT,
           "department mkt approved it already");
    fx_err(f, "review.decide", DEPT("res"), TUE(10, 3), json, PROTO_E_CONFLICT,
           "not claimed by department res (claim it first)");
    fx_free(f);
}

static void test_joint_review(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *j1 = accept_case(f, TUE(10, 0), "W03", "S04", S04_ALL);
    const char *j2 = accept_case(f, TUE(10, 1), "W03", "S04", S04_ALL);
    case_get(f, TUE(10, 2), j1);
    assert_int_equal(fx_len(f, "departments"), 3);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 12, 8, 17, 0)); /* 10 working days */
    const char *deps[] = {"mkt", "res", "hsg"};
    for (int i = 0; i < 3; i++) {
        claim(f, TUE(10, 5 + i), deps[i], j1);
        decide(f, TUE(10, 5 + i), deps[i], j1, "decision: approve");
        assert_string_equal(fx_str(f, "state"), i < 2 ? "review" : "approved");
    }
    case_get(f, TUE(10, 9), j1);
    assert_true(fx_int(f, "ready"));
    for (int i = 0; i < 3; i++) {
        char path[40];
        snprintf(path, sizeof path, "departments.%d.state", i);
        assert_string_equal(fx_str(f, path), "approved");
    }

    /* j2: one approval, then one denial denies it. */
    claim(f, TUE(10, 10), "mkt", j2);
    decide(f, TUE(10, 10), "mkt", j2, "decision: approve");
    claim(f, TUE(10, 11), "res", j2);
    char json[96];
    snprintf(json, sizeof json, "{case_no: '%s', decision: deny}", j2);
    fx_err(f, "review.decide", DEPT("res"), TUE(10, 11), json, PROTO_E_BAD_REQUEST, "args.reason");
    snprintf(json, sizeof json, "{case_no: '%s', decision: deny, reason: ''}", j2);
    fx_err(f, "review.decide", DEPT("res"), TUE(10, 11), json, PROTO_E_BAD_REQUEST, "args.reason");
    snprintf(json, sizeof json, "{case_no: '%s', decision: shrug}", j2);
    fx_err(f, "review.decide", DEPT("res"), TUE(10, 11), json, PROTO_E_BAD_REQUEST,
           "args.decision");
    decide(f, TUE(10, 12), "res", j2, "decision: deny, reason: 'zoning'");
    assert_string_equal(fx_str(f, "state"), "denied");
    case_get(f, TUE(10, 13), j2);
    assert_string_equal(fx_str(f, "state"), "denied");
    assert_true(fx_int(f, "ready"));
    assert_string_equal(fx_str(f, "departments.0.state"), "approved");
    assert_string_equal(fx_str(f, "departments.1.state"), "denied");
    assert_string_equal(fx_str(f, "departments.2.state"), "pending");
    /* hsg has nothing left to review. */
    claim(f, TUE(10, 14), "hsg", NULL);
    fx_ok(f, "stats", ADMIN, TUE(10, 15), NULL);
    for (int i = 0; i < 3; i++) {
        char path[48];
        snprintf(path, sizeof path, "departments.%s.in_review", deps[i]);
        assert_int_equal(fx_int(f, path), 0);
    }
    fx_free(f);
}

static void test_supplement(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *c1 = accept_case(f, TUE(10, 0), "W01", "S01", S01_ALL);
    claim(f, TUE(10, 1), "mkt", c1);
    char json[128];
    snprintf(json, sizeof json, "{case_no: '%s', decision: supplement}", c1);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 2), json, PROTO_E_BAD_REQUEST, "args.missing");
    snprintf(json, sizeof json, "{case_no: '%s', decision: supplement, missing: []}", c1);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 2), json, PROTO_E_BAD_REQUEST, "args.missing");
    /* Not on S01's checklist: the back office may not add requirements. */
    snprintf(json, sizeof json, "{case_no: '%s', decision: supplement, missing: [M03, M09]}", c1);
    fx_err(f, "review.decide", DEPT("mkt"), TUE(10, 2), json, PROTO_E_CHECKLIST, "M09");
    decide(f, TUE(10, 2), "mkt", c1, "decision: supplement, missing: [M03]");
    assert_string_equal(fx_str(f, "state"), "supplement");
    case_get(f, TUE(10, 3), c1);
    assert_string_equal(fx_str(f, "departments.0.state"), "supplement");
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 3), "{state: supplement}");
    assert_int_equal(fx_len(f, "cases"), 1);
    fx_ok(f, "stats", ADMIN, TUE(10, 3), NULL);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 0);

    /* Same-day supplement: the deadline does not move. */
    const char *c2 = accept_case(f, TUE(10, 10), "W01", "S01", S01_ALL);
    claim(f, TUE(10, 11), "mkt", c2);
    decide(f, TUE(10, 11), "mkt", c2, "decision: supplement, missing: [M01, M02]");
    serve(f, TUE(15, 0), "W02", "A");
    snprintf(json, sizeof json, "{case_no: '%s', materials: [M02]}", c2);
    fx_err(f, "case.supplement", WIN("W02"), TUE(15, 0), json, PROTO_E_CHECKLIST, "M01");
    snprintf(json, sizeof json, "{case_no: '%s', materials: [M02, M01]}", c2);
    fx_ok(f, "case.supplement", WIN("W02"), TUE(15, 1), json);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 11, 27, 17, 0));
    fx_err(f, "case.supplement", WIN("W02"), TUE(15, 2), json, PROTO_E_CONFLICT,
           "no supplement is asked");
    fx_err(f, "case.supplement", WIN("W02"), TUE(15, 2),
           "{case_no: '20261124-0999', materials: [M01]}", PROTO_E_NOT_FOUND, "args.case_no");
    fx_err(f, "case.supplement", WIN("W02"), TUE(15, 2), "{case_no: '20261124-0001'}",
           PROTO_E_BAD_REQUEST, "args.materials");
    fx_ok(f, "window.done", WIN("W02"), TUE(15, 3), NULL);

    /* c1 stopped on Tue and runs again on Mon: Tue Wed Thu Fri = 4 working
     * days later than Fri 11-27, Thu 12-03. While paused, no due_soon. */
    case_get(f, fx_at(2026, 11, 27, 9, 0), c1);
    assert_false(fx_int(f, "due_soon"));
    case_get(f, fx_at(2026, 11, 27, 17, 0) + 1, c1);
    assert_false(fx_int(f, "overdue"));
    serve(f, fx_at(2026, 11, 30, 10, 0), "W02", "A");
    snprintf(json, sizeof json, "{case_no: '%s', materials: [M03]}", c1);
    fx_ok(f, "case.supplement", WIN("W02"), fx_at(2026, 11, 30, 10, 0), json);
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 12, 3, 17, 0));
    case_get(f, fx_at(2026, 11, 30, 10, 1), c1);
    assert_string_equal(fx_str(f, "state"), "review");
    assert_string_equal(fx_str(f, "departments.0.state"), "pending");
    assert_int_equal(fx_int(f, "deadline_ms"), fx_at(2026, 12, 3, 17, 0));
    /* Back in review: claimable (after c2, due earlier), and the marks run
     * for the new deadline. */
    claim(f, fx_at(2026, 11, 30, 10, 2), "mkt", c2);
    claim(f, fx_at(2026, 11, 30, 10, 3), "mkt", c1);
    case_get(f, fx_at(2026, 12, 3, 9, 0), c1);
    assert_true(fx_int(f, "due_soon"));
    fx_ok(f, "stats", ADMIN, fx_at(2026, 12, 3, 9, 0), NULL);
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 2); /* c1 and c2 */
    assert_int_equal(fx_int(f, "departments.mkt.due_soon"), 1);
    assert_int_equal(fx_int(f, "departments.mkt.overdue"), 1); /* c2, due 11-27 */
    fx_free(f);
}

static void test_issuance(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    serve(f, TUE(10, 0), "W01", "A");
    assert_int_equal(intake(f, TUE(10, 1), "W01", "S02", "[M02, M04]", "instant", NULL), 0);
    char i1[32], i2[32];
    snprintf(i1, sizeof i1, "%s", fx_str(f, "case_no"));
    assert_int_equal(intake(f, TUE(10, 2), "W01", "S06", "[M02, M10]", "instant", NULL), 0);
    snprintf(i2, sizeof i2, "%s", fx_str(f, "case_no"));
    fx_ok(f, "window.done", WIN("W01"), TUE(10, 3), NULL);
    const char *r1 = accept_case(f, TUE(10, 4), "W01", "S01", S01_ALL);

    char json[128];
    snprintf(json, sizeof json, "{line: F, case_no: '%s'}", r1);
    fx_err(f, "ticket.take", KIOSK, TUE(10, 5), json, PROTO_E_CONFLICT, "nothing to pick up");
    fx_err(f, "ticket.take", KIOSK, TUE(10, 5), "{line: F, case_no: '20261124-0999'}",
           PROTO_E_NOT_FOUND, "args.case_no");
    snprintf(json, sizeof json, "{line: F, case_no: '%s'}", i1);
    fx_ok(f, "ticket.take", KIOSK, TUE(10, 6), json);
    assert_string_equal(fx_str(f, "number"), "F001");
    fx_open_window(f, TUE(10, 7), "W05");
    assert_string_equal(fx_call(f, TUE(10, 8), "W05"), "F001");

    snprintf(json, sizeof json, "{case_no: '%s', method: counter}", r1);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 9), json, PROTO_E_CONFLICT, "not ready");
    snprintf(json, sizeof json, "{case_no: '%s', method: drone}", i1);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 9), json, PROTO_E_BAD_REQUEST, "args.method");
    snprintf(json, sizeof json, "{case_no: '%s'}", i1);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 9), json, PROTO_E_BAD_REQUEST, "args.method");
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 9), "{case_no: '20261124-0999', method: counter}",
           PROTO_E_NOT_FOUND, "args.case_no");
    snprintf(json, sizeof json, "{case_no: '%s', method: counter}", i1);
    fx_ok(f, "case.deliver", WIN("W05"), TUE(10, 10), json);
    assert_int_equal(fx_len(f, ""), 0);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 11), json, PROTO_E_CONFLICT, "delivered");
    fx_ok(f, "window.done", WIN("W05"), TUE(10, 11), NULL);
    case_get(f, TUE(10, 12), i1);
    assert_string_equal(fx_str(f, "state"), "delivered");
    assert_true(fx_int(f, "delivered"));
    assert_false(fx_int(f, "ready"));
    /* A delivered case has nothing left to pick up. */
    snprintf(json, sizeof json, "{line: F, case_no: '%s'}", i1);
    fx_err(f, "ticket.take", KIOSK, TUE(10, 12), json, PROTO_E_CONFLICT,
           "was delivered: nothing left to pick up");

    /* Mail needs a tracking number. */
    snprintf(json, sizeof json, "{case_no: '%s', method: mail}", i2);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 13), json, PROTO_E_BAD_REQUEST, "args.tracking");
    snprintf(json, sizeof json, "{case_no: '%s', method: mail, tracking: ''}", i2);
    fx_err(f, "case.deliver", WIN("W05"), TUE(10, 13), json, PROTO_E_BAD_REQUEST, "args.tracking");
    snprintf(json, sizeof json, "{case_no: '%s', method: mail, tracking: SF1234567890}", i2);
    fx_ok(f, "case.deliver", WIN("W05"), TUE(10, 14), json);
    /* A denied case is ready too. */
    claim(f, TUE(10, 15), "mkt", r1);
    decide(f, TUE(10, 15), "mkt", r1, "decision: deny, reason: 'no premises'");
    snprintf(json, sizeof json, "{case_no: '%s', method: counter}", r1);
    fx_ok(f, "case.deliver", WIN("W05"), TUE(10, 16), json);
    fx_ok(f, "stats", ADMIN, TUE(10, 17), NULL);
    assert_int_equal(fx_int(f, "cases.delivered"), 3);
    assert_int_equal(fx_int(f, "lines.F.taken"), 1);
    fx_free(f);
}

static void test_ratings(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    /* A waiting ticket has had no service to rate. */
    fx_ok(f, "ticket.take", KIOSK, TUE(9, 59), "{line: C}");
    fx_err(f, "rate", KIOSK, TUE(9, 59), "{ticket_id: 20261124-C001, score: 5}", PROTO_E_CONFLICT,
           "waiting");
    const char *no = accept_case(f, TUE(10, 0), "W01", "S01", S01_ALL); /* ticket A001 */
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{ticket_id: 20261124-A001, score: 0}",
           PROTO_E_BAD_REQUEST, "args.score");
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{ticket_id: 20261124-A001, score: 6}",
           PROTO_E_BAD_REQUEST, "args.score");
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{ticket_id: 20261124-A001}", PROTO_E_BAD_REQUEST,
           "args.score");
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{score: 5}", PROTO_E_BAD_REQUEST, "give one");
    char json[128];
    snprintf(json, sizeof json, "{ticket_id: 20261124-A001, case_no: '%s', score: 5}", no);
    fx_err(f, "rate", KIOSK, TUE(10, 1), json, PROTO_E_BAD_REQUEST, "give one");
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{ticket_id: 20261124-A999, score: 5}", PROTO_E_NOT_FOUND,
           "args.ticket_id");
    fx_err(f, "rate", KIOSK, TUE(10, 1), "{case_no: '20261124-0999', score: 5}", PROTO_E_NOT_FOUND,
           "args.case_no");
    fx_ok(f, "rate", KIOSK, TUE(10, 2), "{ticket_id: 20261124-A001, score: 5, comment: fast}");
    assert_int_equal(fx_len(f, ""), 0);
    fx_err(f, "rate", KIOSK, TUE(10, 3), "{ticket_id: 20261124-A001, score: 1}", PROTO_E_CONFLICT,
           "once");
    /* A case is rated once decided. */
    snprintf(json, sizeof json, "{case_no: '%s', score: 3}", no);
    fx_err(f, "rate", ADMIN, TUE(10, 4), json, PROTO_E_CONFLICT, "once it is decided");
    claim(f, TUE(10, 4), "mkt", no);
    decide(f, TUE(10, 4), "mkt", no, "decision: approve");
    fx_ok(f, "rate", ADMIN, TUE(10, 4), json);
    snprintf(json, sizeof json, "{case_no: '%s', score: 4}", no);
    fx_err(f, "rate", KIOSK, TUE(10, 5), json, PROTO_E_CONFLICT, "once");
    fx_ok(f, "stats", ADMIN, TUE(10, 6), NULL);
    assert_int_equal(fx_int(f, "ratings.count"), 2);
    assert_true(fx_dbl(f, "ratings.good_share") == 0.5);
    fx_free(f);
}

/* Every kind of unknown object is not_found, naming the field. */
static void test_not_found(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    serve(f, TUE(10, 0), "W01", "A");
    int64_t t = TUE(10, 1);
    fx_err(f, "case.get", KIOSK, t, "{case_no: '20261124-0001'}", PROTO_E_NOT_FOUND,
           "args.case_no");
    fx_err(f, "case.get", KIOSK, t, "{case_no: ''}", PROTO_E_NOT_FOUND, "args.case_no");
    fx_err(f, "case.get", KIOSK, t, "{}", PROTO_E_BAD_REQUEST, "args.case_no");
    fx_err(f, "ticket.get", KIOSK, t, "{ticket_id: 20261124-B001}", PROTO_E_NOT_FOUND,
           "args.ticket_id");
    fx_err(f, "ticket.return", KIOSK, t, "{ticket_id: nope}", PROTO_E_NOT_FOUND, "args.ticket_id");
    fx_err(f, "ticket.take", KIOSK, t, "{line: G}", PROTO_E_NOT_FOUND, "args.line");
    fx_err(f, "window.transfer", WIN("W01"), t, "{line: G}", PROTO_E_NOT_FOUND, "args.line");
    fx_err(f, "review.decide", DEPT("mkt"), t, "{case_no: '20261124-0001', decision: approve}",
           PROTO_E_NOT_FOUND, "args.case_no");
    fx_err(f, "case.deliver", WIN("W01"), t, "{case_no: x, method: counter}", PROTO_E_NOT_FOUND,
           "args.case_no");
    assert_int_equal(intake(f, t, "W01", "S07", "[M01]", "notify", NULL), -1);
    assert_int_equal(f->e.code, PROTO_E_NOT_FOUND);
    assert_non_null(strstr(f->e.msg, "args.service"));
    fx_free(f);
}

/* A scripted Tuesday; every figure of stats computed by hand. */
static void test_stats_scripted_day(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    fx_take(f, TUE(9, 0), "A", NULL);               /* A001 */
    fx_take(f, TUE(9, 2), "A", NULL);               /* A002 */
    fx_take(f, TUE(9, 4), "B", NULL);               /* B001 */
    fx_take(f, TUE(9, 6), "A", ", priority: true"); /* A003 */
    fx_take(f, TUE(9, 10), "C", NULL);              /* C001 */
    fx_open_window(f, TUE(9, 0), "W01");
    fx_open_window(f, TUE(9, 0), "W04");
    /* A003: waited 4 min, served 10 min; an instant case. */
    assert_string_equal(fx_call(f, TUE(9, 10), "W01"), "A003");
    assert_int_equal(intake(f, TUE(9, 15), "W01", "S02", "[M02, M04]", "instant", NULL), 0);
    fx_ok(f, "window.done", WIN("W01"), TUE(9, 20), NULL);
    /* A001: waited 20 min, served 8 min; an accepted case for pol. */
    assert_string_equal(fx_call(f, TUE(9, 20), "W01"), "A001");
    assert_int_equal(intake(f, TUE(9, 25), "W01", "S03", "[M02, M04, M05]", "accept", NULL), 0);
    fx_ok(f, "window.done", WIN("W01"), TUE(9, 28), NULL);
    /* A002: waited 26 min, no-show. */
    assert_string_equal(fx_call(f, TUE(9, 28), "W01"), "A002");
    fx_ok(f, "window.no_show", WIN("W01"), TUE(9, 29), NULL);
    /* B001: waited 25 min, served 11 min; a notice and a refusal. */
    assert_string_equal(fx_call(f, TUE(9, 29), "W01"), "B001");
    assert_int_equal(intake(f, TUE(9, 30), "W01", "S01", "[M01]", "notify", NULL), 0);
    assert_int_equal(intake(f, TUE(9, 31), "W01", "S04", "[M01]", "refuse", ", reason: 'not here'"),
                     0);
    fx_ok(f, "window.done", WIN("W01"), TUE(9, 40), NULL);
    /* C001: waited 30 min, served 5 min at W04, no case. */
    assert_string_equal(fx_call(f, TUE(9, 40), "W04"), "C001");
    fx_ok(f, "window.done", WIN("W04"), TUE(9, 45), NULL);
    /* A004 waits from 09:50. */
    fx_take(f, TUE(9, 50), "A", NULL);
    fx_ok(f, "rate", KIOSK, TUE(9, 51), "{ticket_id: 20261124-A003, score: 5}");
    fx_ok(f, "rate", KIOSK, TUE(9, 52), "{ticket_id: 20261124-A001, score: 3}");
    fx_ok(f, "rate", KIOSK, TUE(9, 53), "{ticket_id: 20261124-B001, score: 4}");

    fx_ok(f, "stats", ADMIN, TUE(10, 0), NULL);
    assert_string_equal(fx_str(f, "day"), "2026-11-24");
    assert_int_equal(fx_int(f, "now_ms"), TUE(10, 0));
    assert_int_equal(fx_len(f, "lines"), 5);
    /* A: waits 240, 1200, 1560 s: mean 1000, p90 (3rd of 3) 1560; A004
     * has waited 600 s. */
    assert_int_equal(fx_int(f, "lines.A.taken"), 4);
    assert_int_equal(fx_int(f, "lines.A.served"), 2);
    assert_int_equal(fx_int(f, "lines.A.no_show"), 1);
    assert_int_equal(fx_int(f, "lines.A.expired"), 0);
    assert_int_equal(fx_int(f, "lines.A.waiting"), 1);
    assert_int_equal(fx_int(f, "lines.A.wait_avg_s"), 1000);
    assert_int_equal(fx_int(f, "lines.A.wait_p90_s"), 1560);
    assert_int_equal(fx_int(f, "lines.A.longest_wait_s"), 600);
    assert_int_equal(fx_int(f, "lines.B.taken"), 1);
    assert_int_equal(fx_int(f, "lines.B.served"), 1);
    assert_int_equal(fx_int(f, "lines.B.waiting"), 0);
    assert_int_equal(fx_int(f, "lines.B.wait_avg_s"), 1500);
    assert_int_equal(fx_int(f, "lines.B.wait_p90_s"), 1500);
    assert_int_equal(fx_int(f, "lines.B.longest_wait_s"), 0);
    assert_int_equal(fx_int(f, "lines.C.served"), 1);
    assert_int_equal(fx_int(f, "lines.C.wait_avg_s"), 1800);
    assert_int_equal(fx_int(f, "lines.D.taken") + fx_int(f, "lines.F.taken"), 0);
    assert_int_equal(fx_int(f, "lines.F.wait_p90_s"), 0);
    /* W01 served 600 + 480 + 660 s; W04 300 s. */
    assert_int_equal(fx_len(f, "windows"), 6);
    assert_int_equal(fx_int(f, "windows.W01.served"), 3);
    assert_int_equal(fx_int(f, "windows.W01.service_avg_s"), 580);
    assert_int_equal(fx_int(f, "windows.W04.served"), 1);
    assert_int_equal(fx_int(f, "windows.W04.service_avg_s"), 300);
    assert_int_equal(fx_int(f, "windows.W02.served"), 0);
    assert_int_equal(fx_len(f, "departments"), 5);
    assert_int_equal(fx_int(f, "departments.pol.in_review"), 1);
    assert_int_equal(fx_int(f, "departments.hrss.in_review"), 0); /* instant */
    assert_int_equal(fx_int(f, "departments.mkt.in_review"), 0);
    assert_int_equal(fx_int(f, "cases.accepted"), 1);
    assert_int_equal(fx_int(f, "cases.instant"), 1);
    assert_int_equal(fx_int(f, "cases.notified"), 1);
    assert_int_equal(fx_int(f, "cases.refused"), 1);
    assert_int_equal(fx_int(f, "cases.delivered"), 0);
    assert_true(fx_dbl(f, "cases.instant_rate") == 0.25);
    assert_int_equal(fx_int(f, "ratings.count"), 3);
    assert_true(fx_dbl(f, "ratings.good_share") == 2.0 / 3.0);

    /* The next morning the day is past: live figures are zero, the rest
     * stays; the close expired A004. */
    fx_ok(f, "stats", ADMIN, fx_at(2026, 11, 25, 9, 0), "{day: '2026-11-24'}");
    assert_int_equal(fx_int(f, "lines.A.expired"), 1);
    assert_int_equal(fx_int(f, "lines.A.waiting"), 0);
    assert_int_equal(fx_int(f, "lines.A.longest_wait_s"), 0);
    assert_int_equal(fx_int(f, "lines.A.wait_avg_s"), 1000);
    fx_ok(f, "stats", ADMIN, fx_at(2026, 11, 25, 9, 0), NULL);
    assert_string_equal(fx_str(f, "day"), "2026-11-25");
    assert_int_equal(fx_int(f, "lines.A.taken"), 0);
    assert_int_equal(fx_int(f, "cases.accepted"), 0);
    assert_true(fx_dbl(f, "cases.instant_rate") == 0.0);
    assert_int_equal(fx_int(f, "departments.pol.in_review"), 1); /* live */
    fx_err(f, "stats", ADMIN, fx_at(2026, 11, 25, 9, 0), "{day: '2026-02-30'}", PROTO_E_BAD_REQUEST,
           "args.day");
    fx_err(f, "stats", ADMIN, fx_at(2026, 11, 25, 9, 0), "{day: 20261124}", PROTO_E_BAD_REQUEST,
           "args.day");
    fx_free(f);
}

/* The first event of the last record: its topic in topic, its data as a
 * map in f's zone... decoded into z (the caller destroys it). */
static const msgpack_object *first_event(fixture *f, msgpack_zone *z, char *topic, size_t cap)
{
    static msgpack_object o;
    size_t off = 0;
    assert_true(f->h->n_ev > 0);
    assert_int_equal(msgpack_unpack((const char *)f->h->ev.p, f->h->ev.len, &off, z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(o.type, MSGPACK_OBJECT_ARRAY);
    const msgpack_object *t = &o.via.array.ptr[0];
    snprintf(topic, cap, "%.*s", (int)t->via.str.size, t->via.str.ptr);
    return &o.via.array.ptr[2];
}

static const char *ev_str(const msgpack_object *data, const char *key)
{
    static char b[64];
    const msgpack_object *v = proto_map_get(data, key);
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return NULL;
    snprintf(b, sizeof b, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    return b;
}

/* What a reviewer sees (issue 17): case.get, review.list and (rules 3)
 * review.claim carry the application as the window gave it, each
 * department's decision, and the case's history; a kiosk sees the ten
 * keys only. case events (rules 3) say what changed. */
static void test_reviewer_sees_the_application(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    const char *tid = serve(f, TUE(10, 0), "W02", "A");
    assert_int_equal(fx_do(f, "window.intake", WIN("W02"), TUE(10, 0),
                           "{service: S01, applicant: {kind: person, id: '110101199001011234', "
                           "name: 'Zhang San'}, materials: [M01, M02, M03], outcome: accept}"),
                     0);
    char no[32], json[160];
    snprintf(no, sizeof no, "%s", fx_str(f, "case_no"));
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    char topic[16];
    const msgpack_object *ev = first_event(f, &z, topic, sizeof topic);
    assert_string_equal(topic, "case");
    assert_string_equal(ev_str(ev, "change"), "accepted");
    assert_non_null(proto_map_get(ev, "departments"));
    msgpack_zone_clear(&z);

    snprintf(json, sizeof json, "{case_no: '%s'}", no);
    fx_ok(f, "case.get", DEPT("mkt"), TUE(10, 1), json);
    assert_string_equal(fx_str(f, "service_names.en"), "sole-proprietor registration");
    assert_string_equal(fx_str(f, "service_names.zh"), "个体工商户登记");
    assert_string_equal(fx_str(f, "applicant.kind"), "person");
    assert_string_equal(fx_str(f, "applicant.id_masked"), "110***********1234");
    assert_string_equal(fx_str(f, "applicant.name"), "Zhang San");
    assert_null(fx_get(f, "applicant.id_hash")); /* a bare id (no daemon): no hash */
    assert_int_equal(fx_len(f, "materials"), 3);
    assert_string_equal(fx_str(f, "materials.1.code"), "M02");
    assert_true(strlen(fx_str(f, "materials.1.name")) > 0);
    assert_string_equal(fx_str(f, "intake.window"), "W02");
    assert_string_equal(fx_str(f, "intake.ticket_id"), tid);
    assert_int_equal(fx_len(f, "history"), 1);
    assert_string_equal(fx_str(f, "history.0.change"), "accepted");
    assert_string_equal(fx_str(f, "history.0.state"), "review");
    assert_int_equal(fx_int(f, "history.0.at_ms"), TUE(10, 0));
    assert_string_equal(fx_str(f, "history.0.actor.role"), "window");
    assert_string_equal(fx_str(f, "history.0.actor.id"), "W02");
    assert_null(fx_get(f, "departments.0.decision"));
    /* A kiosk (a citizen's screen) sees the ten keys only. */
    fx_ok(f, "case.get", KIOSK, TUE(10, 1), json);
    assert_int_equal(fx_len(f, ""), 10);
    assert_null(fx_get(f, "applicant"));

    /* review.claim's case is the same view, with the lease. */
    claim(f, TUE(10, 2), "mkt", no);
    assert_string_equal(fx_str(f, "case.applicant.name"), "Zhang San");
    assert_int_equal(fx_int(f, "case.departments.0.lease_until_ms"), TUE(10, 2) + 300 * S);
    assert_string_equal(fx_str(f, "case.history.1.change"), "claimed");
    assert_string_equal(fx_str(f, "case.history.1.department"), "mkt");
    assert_string_equal(fx_str(f, "case.history.1.department_state"), "claimed");
    assert_string_equal(fx_str(f, "case.history.1.actor.role"), "department");
    ev = first_event(f, &z, topic, sizeof topic);
    assert_string_equal(ev_str(ev, "change"), "claimed");
    msgpack_zone_clear(&z);

    /* A supplement: the department's decision and what is missing. */
    decide(f, TUE(10, 3), "mkt", no, "decision: supplement, missing: [M03]");
    ev = first_event(f, &z, topic, sizeof topic);
    assert_string_equal(ev_str(ev, "change"), "supplement");
    assert_string_equal(ev_str(ev, "state"), "supplement");
    msgpack_zone_clear(&z);
    fx_ok(f, "review.list", DEPT("mkt"), TUE(10, 4), "{state: supplement}");
    assert_string_equal(fx_str(f, "cases.0.departments.0.decision"), "supplement");
    assert_string_equal(fx_str(f, "cases.0.departments.0.missing.0"), "M03");
    assert_string_equal(fx_str(f, "cases.0.applicant.id_masked"), "110***********1234");
    /* Brought back, claimed again and denied: the reason is kept. */
    serve(f, TUE(11, 0), "W01", "A");
    snprintf(json, sizeof json, "{case_no: '%s', materials: [M03]}", no);
    fx_ok(f, "case.supplement", WIN("W01"), TUE(11, 0), json);
    ev = first_event(f, &z, topic, sizeof topic);
    assert_string_equal(ev_str(ev, "change"), "resumed");
    msgpack_zone_clear(&z);
    claim(f, TUE(11, 1), "mkt", no);
    decide(f, TUE(11, 2), "mkt", no, "decision: deny, reason: 'no premises'");
    snprintf(json, sizeof json, "{case_no: '%s'}", no);
    fx_ok(f, "case.get", DEPT("mkt"), TUE(11, 3), json);
    assert_string_equal(fx_str(f, "departments.0.decision"), "deny");
    assert_string_equal(fx_str(f, "departments.0.reason"), "no premises");
    assert_null(fx_get(f, "departments.0.missing"));
    static const char *const changes[] = {"accepted", "claimed", "supplement",
                                          "resumed",  "claimed", "decided"};
    assert_int_equal(fx_len(f, "history"), 6);
    for (int i = 0; i < 6; i++) {
        char path[32];
        snprintf(path, sizeof path, "history.%d.change", i);
        assert_string_equal(fx_str(f, path), changes[i]);
    }
    assert_string_equal(fx_str(f, "history.3.actor.id"), "W01");
    assert_string_equal(fx_str(f, "history.5.department_state"), "denied");
    assert_string_equal(fx_str(f, "history.5.state"), "denied");
    msgpack_zone_destroy(&z);
    fx_free(f);
}

/* Rules 2 (an older log replayed): review.claim's case and the case event
 * are as they were (their bytes are recorded); reads show the full view. */
static void test_rules_2_claim_and_events_as_they_were(void **state)
{
    (void)state;
    fixture *f = fx_new_rules(TUE(8, 0), 2);
    const char *no = accept_case(f, TUE(10, 0), "W01", "S01", S01_ALL);
    claim(f, TUE(10, 1), "mkt", no);
    assert_int_equal(fx_len(f, "case"), 10);
    assert_null(fx_get(f, "case.applicant"));
    assert_int_equal(fx_len(f, "case.departments.0"), 2);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    char topic[16];
    const msgpack_object *ev = first_event(f, &z, topic, sizeof topic);
    assert_string_equal(topic, "case");
    assert_int_equal(ev->via.map.size, 2); /* case_no, state */
    assert_null(ev_str(ev, "change"));
    msgpack_zone_destroy(&z);
    char json[64];
    snprintf(json, sizeof json, "{case_no: '%s'}", no);
    fx_ok(f, "case.get", DEPT("mkt"), TUE(10, 2), json);
    assert_string_equal(fx_str(f, "history.1.change"), "claimed");
    fx_free(f);
}

/* A name is kept to 128 bytes, never cutting a character. */
static void test_long_name_is_cut_on_a_character(void **state)
{
    (void)state;
    fixture *f = fx_new(TUE(8, 0));
    serve(f, TUE(10, 0), "W01", "A");
    char name[200] = "";
    for (int i = 0; i < 50; i++)
        strcat(name, "\xe5\xbc\xa0"); /* 张, 3 bytes: 150 in all */
    char json[400];
    snprintf(json, sizeof json,
             "{service: S01, applicant: {kind: person, id: '110101199001011234', name: '%s'}, "
             "materials: [M01, M02, M03], outcome: accept}",
             name);
    assert_int_equal(fx_do(f, "window.intake", WIN("W01"), TUE(10, 0), json), 0);
    snprintf(json, sizeof json, "{case_no: '%s'}", fx_str(f, "case_no"));
    fx_ok(f, "case.get", ADMIN, TUE(10, 1), json);
    name[126] = 0; /* 42 characters */
    assert_string_equal(fx_str(f, "applicant.name"), name);
    fx_free(f);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reviewer_sees_the_application),
        cmocka_unit_test(test_rules_2_claim_and_events_as_they_were),
        cmocka_unit_test(test_long_name_is_cut_on_a_character),
        cmocka_unit_test(test_claim_takes_the_most_urgent),
        cmocka_unit_test(test_decide_again_says_decided),
        cmocka_unit_test(test_intake_outcomes),
        cmocka_unit_test(test_checklist_rules),
        cmocka_unit_test(test_deadlines_calendar),
        cmocka_unit_test(test_leases),
        cmocka_unit_test(test_joint_review),
        cmocka_unit_test(test_supplement),
        cmocka_unit_test(test_issuance),
        cmocka_unit_test(test_ratings),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_stats_scripted_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
