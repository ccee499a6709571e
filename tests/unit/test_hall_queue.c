/* tests/unit/test_hall_queue.c: stage 1 of the hall, the intake queue, with
 * the clock in the test's hand: calling order across classes and lines,
 * appointments in and out of their slot, first come first served, transfer,
 * no-show and return, one current ticket per window, window states, and the
 * day's close. Every scenario is replayed at the end (hall_fixture.h). */
#include "hall_fixture.h"

/* Tuesday 2026-11-24, a working day. */
#define TUE(hh, mm) fx_at(2026, 11, 24, hh, mm)

static fixture *tuesday(void)
{
    return fx_new(TUE(8, 0));
}

/* Books `line` at `slot` at time `now`; returns the code. */
static const char *book(fixture *f, int64_t now, const char *line, int64_t slot)
{
    char json[128];
    static char codes[8][24];
    static int next;
    snprintf(json, sizeof json, "{line: %s, slot_ms: %lld}", line, (long long)slot);
    fx_ok(f, "appointment.book", KIOSK, now, json);
    assert_int_equal(fx_int(f, "slot_ms"), slot);
    char *b = codes[next++ % 8];
    snprintf(b, 24, "%s", fx_str(f, "code"));
    return b;
}

static void take_appt(fixture *f, int64_t now, const char *line, const char *code,
                      const char *extra)
{
    char json[160];
    snprintf(json, sizeof json, "{line: %s, appointment: '%s'%s}", line, code, extra ? extra : "");
    fx_ok(f, "ticket.take", KIOSK, now, json);
}

/* Calls at w and ends the ticket as done; returns the number called. */
static const char *call_done(fixture *f, int64_t now, const char *w)
{
    static char num[16];
    snprintf(num, sizeof num, "%s", fx_call(f, now, w));
    if (num[0])
        fx_ok(f, "window.done", WIN(w), now, NULL);
    return num;
}

/* The same tickets at W03 (lines B A, order: lines) under rules `rules`,
 * called in the order `want`. */
static void order_classes_and_lines(int rules, const char *const want[6])
{
    fixture *f = fx_new_rules(TUE(8, 0), rules);
    fx_take(f, TUE(10, 0), "A", NULL); /* A001 rest */
    fx_take(f, TUE(10, 1), "B", NULL); /* B001 rest */
    fx_take(f, TUE(10, 2), "A", ", priority: true");
    assert_int_equal(fx_int(f, "ahead"), 0); /* A002 before A001 */
    fx_take(f, TUE(10, 3), "B", ", priority: true");
    const char *ca = book(f, TUE(10, 4), "A", TUE(11, 0));
    const char *cb = book(f, TUE(10, 4), "B", TUE(11, 0));
    fx_take(f, TUE(10, 5), "C", NULL);
    take_appt(f, TUE(10, 50), "A", ca, NULL);
    assert_string_equal(fx_str(f, "number"), "A003");
    assert_int_equal(fx_int(f, "ahead"), 0);
    take_appt(f, TUE(10, 51), "B", cb, NULL);
    assert_string_equal(fx_str(f, "number"), "B003");
    assert_int_equal(fx_int(f, "ahead"), 0);
    /* A001 has the appointment and the priority ticket before it. */
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 52), "{ticket_id: 20261124-A001}");
    assert_int_equal(fx_int(f, "ahead"), 2);

    /* The best class first, across its lines; W03 never calls line C. */
    fx_open_window(f, TUE(10, 55), "W03");
    for (int i = 0; i < 6; i++)
        assert_string_equal(call_done(f, TUE(11, i), "W03"), want[i]);
    assert_string_equal(fx_call(f, TUE(11, 10), "W03"), "");
    assert_true(fx_nil(f, "ticket"));
    fx_open_window(f, TUE(11, 10), "W04");
    assert_string_equal(fx_call(f, TUE(11, 11), "W04"), "C001");
    fx_free(f);
}

static void test_order_classes_and_lines(void **state)
{
    (void)state;
    /* Rules 2: W03 goes by lines (B, then A) within each class. */
    const char *const by_lines[] = {"B003", "A003", "B002", "A002", "B001", "A001"};
    order_classes_and_lines(HALL_RULES_VERSION, by_lines);
    /* Rules 1 (a log from before the order): the earliest of any line. */
    const char *const earliest[] = {"A003", "B003", "A002", "B002", "A001", "B001"};
    order_classes_and_lines(1, earliest);
    order_classes_and_lines(0, earliest); /* a config record naming no rules */
}

/* Protocol 1.2: W03 (B A, order lines) calls a later B before an earlier A;
 * W01 (A B, order earliest) calls the earliest of either; W04 (C D, lines)
 * calls C while one waits. A priority ticket still comes first at W03, and
 * an appointment in its slot before it. */
static void test_window_order(void **state)
{
    (void)state;
    fixture *f = tuesday();
    const char *code = book(f, TUE(9, 0), "A", TUE(11, 0));
    fx_take(f, TUE(10, 0), "A", NULL); /* A001 */
    fx_take(f, TUE(10, 1), "B", NULL); /* B001 */
    fx_take(f, TUE(10, 2), "A", NULL); /* A002 */
    fx_take(f, TUE(10, 3), "B", NULL); /* B002 */
    fx_take(f, TUE(10, 4), "D", NULL); /* D001 */
    fx_take(f, TUE(10, 5), "C", NULL); /* C001 */
    fx_open_window(f, TUE(10, 10), "W03");
    fx_open_window(f, TUE(10, 10), "W01");
    fx_open_window(f, TUE(10, 10), "W04");
    assert_string_equal(call_done(f, TUE(10, 11), "W03"), "B001");
    assert_string_equal(call_done(f, TUE(10, 12), "W01"), "A001");
    assert_string_equal(call_done(f, TUE(10, 13), "W04"), "C001");
    assert_string_equal(call_done(f, TUE(10, 14), "W04"), "D001");
    /* A priority A ticket, later than B002: W03 takes it first. */
    fx_take(f, TUE(10, 20), "A", ", priority: true"); /* A003 */
    assert_string_equal(call_done(f, TUE(10, 21), "W03"), "A003");
    /* An appointment in its slot, then a priority B: the appointment. */
    take_appt(f, TUE(10, 50), "A", code, NULL);       /* A004 */
    fx_take(f, TUE(10, 51), "B", ", priority: true"); /* B003 */
    assert_string_equal(call_done(f, TUE(10, 52), "W03"), "A004");
    assert_string_equal(call_done(f, TUE(10, 53), "W03"), "B003");
    assert_string_equal(call_done(f, TUE(10, 54), "W03"), "B002");
    /* W01: the earliest of either line, whichever it is. */
    fx_take(f, TUE(10, 55), "B", NULL); /* B004 */
    assert_string_equal(call_done(f, TUE(10, 56), "W01"), "A002");
    assert_string_equal(call_done(f, TUE(10, 57), "W01"), "B004");
    assert_string_equal(fx_call(f, TUE(10, 58), "W03"), "");
    fx_free(f);
}

static void test_appointment_slot_edges(void **state)
{
    (void)state;
    fixture *f = tuesday();
    int64_t slot = TUE(11, 0), w = 15 * MIN_MS;
    const char *c1 = book(f, TUE(9, 0), "A", slot);
    const char *c2 = book(f, TUE(9, 0), "A", slot);
    const char *c3 = book(f, TUE(9, 0), "A", slot);
    const char *c4 = book(f, TUE(9, 0), "A", slot);
    assert_string_equal(c1, "P20261124-0001");
    assert_string_equal(c4, "P20261124-0004");
    fx_take(f, TUE(10, 0), "A", NULL);         /* A001 */
    take_appt(f, slot - w - 1, "A", c1, NULL); /* 1 ms early: no preference */
    assert_string_equal(fx_str(f, "number"), "A002");
    assert_int_equal(fx_int(f, "ahead"), 1);
    take_appt(f, slot - w, "A", c2, NULL); /* the window's first ms */
    assert_int_equal(fx_int(f, "ahead"), 0);
    take_appt(f, slot + w, "A", c3, NULL); /* its last ms */
    assert_int_equal(fx_int(f, "ahead"), 1);
    /* 1 ms later the unused code has become a no-show (a record). */
    int n_due = f->n_due;
    fx_ok(f, "appointment.get", KIOSK, slot + w + 1, "{code: P20261124-0004}");
    assert_int_equal(f->n_due, n_due + 1);
    assert_string_equal(fx_str(f, "state"), "no_show");
    assert_int_equal(fx_int(f, "window_from_ms"), slot - w);
    assert_int_equal(fx_int(f, "window_until_ms"), slot + w);
    assert_null(fx_get(f, "ticket_id"));
    /* Used late with priority: a priority ticket, no appointment class. */
    take_appt(f, slot + w + 1, "A", c4, ", priority: true");
    assert_string_equal(fx_str(f, "number"), "A005");
    assert_int_equal(fx_int(f, "ahead"), 2);

    fx_ok(f, "appointment.get", KIOSK, TUE(11, 20), "{code: P20261124-0001}");
    assert_string_equal(fx_str(f, "state"), "used");
    assert_string_equal(fx_str(f, "ticket_id"), "20261124-A002");
    assert_false(fx_int(f, "in_slot"));
    fx_ok(f, "appointment.get", KIOSK, TUE(11, 20), "{code: P20261124-0002}");
    assert_true(fx_int(f, "in_slot"));
    fx_ok(f, "appointment.get", KIOSK, TUE(11, 20), "{code: P20261124-0004}");
    assert_string_equal(fx_str(f, "state"), "used");
    assert_false(fx_int(f, "in_slot"));

    fx_open_window(f, TUE(11, 20), "W01");
    const char *want[] = {"A003", "A004", "A005", "A001", "A002"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(call_done(f, TUE(11, 21 + i), "W01"), want[i]);

    /* A code is used once, at its own line only. */
    fx_err(f, "ticket.take", KIOSK, TUE(12, 0), "{line: A, appointment: P20261124-0002}",
           PROTO_E_CONFLICT, "used already");
    const char *cb = book(f, TUE(12, 0), "B", TUE(13, 0));
    char json[96];
    snprintf(json, sizeof json, "{line: A, appointment: '%s'}", cb);
    fx_err(f, "ticket.take", KIOSK, TUE(12, 50), json, PROTO_E_CONFLICT, "line B");
    fx_err(f, "ticket.take", KIOSK, TUE(12, 50), "{line: A, appointment: P20261124-0099}",
           PROTO_E_NOT_FOUND, "args.appointment");
    fx_err(f, "ticket.take", KIOSK, TUE(12, 50), "{line: A, appointment: 7}", PROTO_E_BAD_REQUEST,
           "args.appointment");
    /* The failed takes took no number and left the code booked. */
    take_appt(f, TUE(12, 50), "B", cb, NULL);
    assert_string_equal(fx_str(f, "number"), "B001");
    fx_free(f);
}

static void test_appointment_book_rules(void **state)
{
    (void)state;
    fixture *f = fx_new(fx_at(2026, 9, 28, 8, 0));
    int64_t now = fx_at(2026, 9, 29, 10, 0); /* a Tuesday */
    /* The extra working Saturday takes appointments; codes go by the
     * slot's day. */
    book(f, now, "A", fx_at(2026, 10, 10, 9, 0));
    assert_string_equal(fx_str(f, "code"), "P20261010-0001");
    book(f, now, "B", fx_at(2026, 10, 12, 16, 59));
    assert_string_equal(fx_str(f, "code"), "P20261012-0001");
    book(f, now, "A", fx_at(2026, 10, 10, 16, 0));
    assert_string_equal(fx_str(f, "code"), "P20261010-0002");
    book(f, now, "C", now); /* now is not the past */
    assert_string_equal(fx_str(f, "code"), "P20260929-0001");

    struct {
        const char *args;
        proto_err code;
        const char *needle;
    } bad[] = {
        {"{slot_ms: 1791510000000}", PROTO_E_BAD_REQUEST, "args.line"},
        {"{line: A}", PROTO_E_BAD_REQUEST, "args.slot_ms"},
        {"{line: A, slot_ms: '10:00'}", PROTO_E_BAD_REQUEST, "args.slot_ms"},
        {"{line: A, slot_ms: -1}", PROTO_E_BAD_REQUEST, "args.slot_ms"},
        {"{line: Z, slot_ms: 1791510000000}", PROTO_E_NOT_FOUND, "args.line"},
        {NULL, 0, NULL},
    };
    for (int i = 0; bad[i].args; i++)
        fx_err(f, "appointment.book", KIOSK, now, bad[i].args, bad[i].code, bad[i].needle);
    int64_t slots[] = {
        now - 1,                    /* the past */
        fx_at(2026, 10, 12, 8, 59), /* before opening */
        fx_at(2026, 10, 12, 17, 0), /* at closing */
        fx_at(2026, 10, 11, 10, 0), /* Sunday */
        fx_at(2026, 10, 17, 10, 0), /* an ordinary Saturday */
        fx_at(2027, 1, 1, 10, 0),   /* a holiday */
        now + 367 * HALL_DAY_MS,    /* beyond the horizon */
    };
    for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
        char json[80];
        snprintf(json, sizeof json, "{line: A, slot_ms: %lld}", (long long)slots[i]);
        fx_err(f, "appointment.book", KIOSK, now, json, PROTO_E_BAD_REQUEST, "args.slot_ms");
    }
    /* The holidays themselves. */
    for (int d = 1; d <= 7; d++) {
        char json[80];
        snprintf(json, sizeof json, "{line: A, slot_ms: %lld}",
                 (long long)fx_at(2026, 10, d, 10, 0));
        fx_err(f, "appointment.book", KIOSK, now, json, PROTO_E_BAD_REQUEST, "args.slot_ms");
    }
    /* None of them took a number. */
    book(f, now, "A", fx_at(2026, 10, 10, 9, 30));
    assert_string_equal(fx_str(f, "code"), "P20261010-0003");
    /* idem: the first answer again; with other args conflict. */
    char json[96];
    snprintf(json, sizeof json, "{line: A, slot_ms: %lld, idem: b1}",
             (long long)fx_at(2026, 10, 12, 9, 0));
    fx_ok(f, "appointment.book", KIOSK, now, json);
    assert_string_equal(fx_str(f, "code"), "P20261012-0002");
    assert_int_equal(fx_do(f, "appointment.book", KIOSK, now + 1000, json), HALL_EXEC_REPLAY);
    assert_string_equal(fx_str(f, "code"), "P20261012-0002");
    snprintf(json, sizeof json, "{line: B, slot_ms: %lld, idem: b1}",
             (long long)fx_at(2026, 10, 12, 9, 0));
    fx_err(f, "appointment.book", KIOSK, now, json, PROTO_E_CONFLICT, "idem");
    fx_err(f, "appointment.get", KIOSK, now, "{code: P20261012-0003}", PROTO_E_NOT_FOUND,
           "args.code");
    fx_err(f, "appointment.get", KIOSK, now, "{}", PROTO_E_BAD_REQUEST, "args.code");
    fx_free(f);
}

static void test_fcfs_within_class(void **state)
{
    (void)state;
    fixture *f = tuesday();
    fx_take(f, TUE(10, 0), "B", NULL);               /* B001 */
    fx_take(f, TUE(10, 0), "A", NULL);               /* A001, same ms, later seq */
    fx_take(f, TUE(10, 1), "A", NULL);               /* A002 */
    fx_take(f, TUE(10, 2), "B", NULL);               /* B002 */
    fx_take(f, TUE(10, 3), "A", ", priority: true"); /* A003 */
    fx_take(f, TUE(10, 4), "B", ", priority: true"); /* B003 */
    fx_open_window(f, TUE(10, 5), "W01");            /* serves A before B */
    const char *want[] = {"A003", "B003", "B001", "A001", "A002", "B002"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(call_done(f, TUE(10, 10 + i), "W01"), want[i]);
    fx_free(f);
}

static void test_transfer_keeps_time(void **state)
{
    (void)state;
    fixture *f = tuesday();
    fx_take(f, TUE(10, 0), "A", NULL); /* A001 */
    fx_take(f, TUE(10, 2), "B", NULL); /* B001 */
    fx_take(f, TUE(10, 5), "A", NULL); /* A002 */
    fx_open_window(f, TUE(10, 9), "W01");
    fx_err(f, "window.transfer", WIN("W01"), TUE(10, 9), "{line: B}", PROTO_E_CONFLICT,
           "no current ticket");
    assert_string_equal(fx_call(f, TUE(10, 10), "W01"), "A001");
    fx_err(f, "window.transfer", WIN("W01"), TUE(10, 12), "{line: Z}", PROTO_E_NOT_FOUND,
           "args.line");
    fx_err(f, "window.transfer", WIN("W01"), TUE(10, 12), "{}", PROTO_E_BAD_REQUEST, "args.line");
    fx_ok(f, "window.transfer", WIN("W01"), TUE(10, 12), "{line: B}");
    /* Same number, new line, its 10:00 place: ahead of B001. */
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 13), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "line"), "B");
    assert_string_equal(fx_str(f, "state"), "waiting");
    assert_int_equal(fx_int(f, "ahead"), 0);
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 13), "{ticket_id: 20261124-B001}");
    assert_int_equal(fx_int(f, "ahead"), 1);
    /* W01 is free again; W03 (B A) takes the transferred ticket first. */
    fx_open_window(f, TUE(10, 14), "W03");
    assert_string_equal(fx_call(f, TUE(10, 15), "W03"), "A001");
    assert_string_equal(fx_str(f, "ticket.line"), "B");
    assert_string_equal(fx_call(f, TUE(10, 16), "W01"), "B001");
    fx_free(f);
}

static void test_no_show_and_return(void **state)
{
    (void)state;
    fixture *f = tuesday();
    for (int i = 0; i < 6; i++)
        fx_take(f, TUE(10, i), "A", NULL); /* A001..A006 */
    fx_open_window(f, TUE(10, 9), "W01");
    fx_err(f, "window.no_show", WIN("W01"), TUE(10, 9), NULL, PROTO_E_CONFLICT,
           "no current ticket");
    assert_string_equal(fx_call(f, TUE(10, 10), "W01"), "A001");
    fx_ok(f, "window.no_show", WIN("W01"), TUE(10, 11), NULL);
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 12), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "state"), "no_show");
    fx_err(f, "ticket.return", KIOSK, TUE(10, 12), "{ticket_id: 20261124-A002}", PROTO_E_CONFLICT,
           "not no_show");
    fx_err(f, "ticket.return", KIOSK, TUE(10, 12), "{ticket_id: 20261124-A999}", PROTO_E_NOT_FOUND,
           "args.ticket_id");
    /* Back 30 min after the no-show (the grace's last ms): behind 3. */
    fx_ok(f, "ticket.return", KIOSK, TUE(10, 41), "{ticket_id: 20261124-A001}");
    assert_int_equal(fx_int(f, "ahead"), 3);
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 41), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "state"), "waiting");
    assert_int_equal(fx_int(f, "ahead"), 3);
    const char *want[] = {"A002", "A003", "A004", "A001"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(call_done(f, TUE(10, 42 + i), "W01"), want[i]);

    /* A005 no-show; only A006 waits: it comes back behind it. */
    assert_string_equal(fx_call(f, TUE(11, 0), "W01"), "A005");
    fx_ok(f, "window.no_show", WIN("W01"), TUE(11, 1), NULL);
    fx_ok(f, "ticket.return", KIOSK, TUE(11, 2), "{ticket_id: 20261124-A005}");
    assert_int_equal(fx_int(f, "ahead"), 1);
    assert_string_equal(call_done(f, TUE(11, 3), "W01"), "A006");
    /* A005 no-show again; 1 ms past the grace it may not return. */
    assert_string_equal(fx_call(f, TUE(11, 4), "W01"), "A005");
    fx_ok(f, "window.no_show", WIN("W01"), TUE(11, 5), NULL);
    fx_err(f, "ticket.return", KIOSK, TUE(11, 35) + 1, "{ticket_id: 20261124-A005}",
           PROTO_E_CONFLICT, "grace");
    /* Nobody waits: it comes back alone. */
    fx_ok(f, "ticket.return", KIOSK, TUE(11, 35), "{ticket_id: 20261124-A005}");
    assert_int_equal(fx_int(f, "ahead"), 0);
    fx_ok(f, "stats", ADMIN, TUE(11, 36), NULL);
    assert_int_equal(fx_int(f, "lines.A.no_show"), 3);
    assert_int_equal(fx_int(f, "lines.A.served"), 5);
    assert_int_equal(fx_int(f, "lines.A.waiting"), 1);
    fx_free(f);
}

static void test_one_current_ticket(void **state)
{
    (void)state;
    fixture *f = tuesday();
    fx_take(f, TUE(10, 0), "A", NULL);
    fx_take(f, TUE(10, 1), "A", NULL);
    fx_open_window(f, TUE(10, 2), "W02");
    fx_err(f, "window.recall", WIN("W02"), TUE(10, 2), NULL, PROTO_E_CONFLICT, "no current ticket");
    fx_err(f, "window.done", WIN("W02"), TUE(10, 2), NULL, PROTO_E_CONFLICT, "no current ticket");
    assert_string_equal(fx_call(f, TUE(10, 3), "W02"), "A001");
    assert_string_equal(fx_str(f, "ticket.state"), "called");
    assert_string_equal(fx_str(f, "ticket.window"), "W02");
    fx_err(f, "window.call", WIN("W02"), TUE(10, 4), NULL, PROTO_E_CONFLICT,
           "already has ticket 20261124-A001");
    fx_ok(f, "window.recall", WIN("W02"), TUE(10, 5), NULL);
    assert_string_equal(fx_str(f, "ticket.number"), "A001");
    /* The refused call left A002 waiting, first in line. */
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 5), "{ticket_id: 20261124-A002}");
    assert_string_equal(fx_str(f, "state"), "waiting");
    assert_int_equal(fx_int(f, "ahead"), 0);
    fx_err(f, "window.state", WIN("W02"), TUE(10, 6), "{state: closed}", PROTO_E_CONFLICT,
           "finish it");
    fx_ok(f, "window.done", WIN("W02"), TUE(10, 7), NULL);
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 7), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "state"), "done");
    assert_string_equal(fx_call(f, TUE(10, 8), "W02"), "A002");
    fx_free(f);
}

static void test_paused_and_closed_windows(void **state)
{
    (void)state;
    fixture *f = tuesday();
    fx_take(f, TUE(10, 0), "A", NULL);
    /* Every window starts closed. */
    fx_err(f, "window.call", WIN("W01"), TUE(10, 1), NULL, PROTO_E_CONFLICT, "closed");
    fx_ok(f, "window.state", WIN("W01"), TUE(10, 2), "{state: paused}");
    fx_err(f, "window.call", WIN("W01"), TUE(10, 3), NULL, PROTO_E_CONFLICT, "paused");
    fx_err(f, "window.state", WIN("W01"), TUE(10, 3), "{state: asleep}", PROTO_E_BAD_REQUEST,
           "args.state");
    fx_err(f, "window.state", WIN("W01"), TUE(10, 3), NULL, PROTO_E_BAD_REQUEST, "args.state");
    fx_ok(f, "window.state", WIN("W01"), TUE(10, 4), "{state: closed}");
    fx_err(f, "window.call", WIN("W01"), TUE(10, 5), NULL, PROTO_E_CONFLICT, "closed");
    /* The refused calls took nothing. */
    fx_ok(f, "ticket.get", KIOSK, TUE(10, 5), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "state"), "waiting");
    fx_open_window(f, TUE(10, 6), "W04"); /* C D only */
    assert_string_equal(fx_call(f, TUE(10, 7), "W04"), "");
    fx_open_window(f, TUE(10, 8), "W01");
    assert_string_equal(fx_call(f, TUE(10, 9), "W01"), "A001");
    /* A paused window keeps its ticket and may end it. */
    fx_ok(f, "window.state", WIN("W01"), TUE(10, 10), "{state: paused}");
    fx_ok(f, "window.done", WIN("W01"), TUE(10, 11), NULL);
    fx_err(f, "window.call", WIN("W09"), TUE(10, 12), NULL, PROTO_E_NOT_FOUND, "W09");
    fx_free(f);
}

static void test_day_close(void **state)
{
    (void)state;
    fixture *f = tuesday();
    fx_take(f, TUE(10, 0), "A", NULL);
    fx_take(f, TUE(10, 1), "A", NULL);
    fx_take(f, TUE(10, 2), "B", ", priority: true");
    fx_take(f, TUE(10, 3), "C", NULL);
    fx_open_window(f, TUE(10, 4), "W01");
    assert_string_equal(fx_call(f, TUE(10, 5), "W01"), "B001");
    /* 16:59: still the day. 17:00: the close record runs by itself. */
    int n_due = f->n_due;
    fx_ok(f, "ticket.get", KIOSK, TUE(16, 59), "{ticket_id: 20261124-A001}");
    assert_string_equal(fx_str(f, "state"), "waiting");
    assert_int_equal(f->n_due, n_due);
    fx_ok(f, "ticket.get", KIOSK, TUE(17, 0), "{ticket_id: 20261124-A001}");
    assert_int_equal(f->n_due, n_due + 1);
    assert_string_equal(fx_str(f, "state"), "expired");
    fx_ok(f, "ticket.get", KIOSK, TUE(17, 0), "{ticket_id: 20261124-C001}");
    assert_string_equal(fx_str(f, "state"), "expired");
    /* The called ticket is not waiting: it stays with its window. */
    fx_ok(f, "ticket.get", KIOSK, TUE(17, 0), "{ticket_id: 20261124-B001}");
    assert_string_equal(fx_str(f, "state"), "called");
    fx_ok(f, "window.done", WIN("W01"), TUE(17, 1), NULL);
    fx_err(f, "window.call", WIN("W01"), TUE(17, 1), NULL, PROTO_E_CONFLICT, "closed");
    fx_ok(f, "stats", ADMIN, TUE(17, 2), "{day: '2026-11-24'}");
    assert_int_equal(fx_int(f, "lines.A.taken"), 2);
    assert_int_equal(fx_int(f, "lines.A.expired"), 2);
    assert_int_equal(fx_int(f, "lines.C.expired"), 1);
    assert_int_equal(fx_int(f, "lines.B.expired"), 0);
    assert_int_equal(fx_int(f, "lines.B.served"), 1);
    assert_int_equal(fx_int(f, "lines.A.waiting"), 0); /* a past day */

    /* After the close, tickets belong to the next business day. */
    fx_take(f, TUE(17, 0) + 1, "A", NULL);
    assert_string_equal(fx_str(f, "ticket_id"), "20261125-A001");
    assert_int_equal(fx_int(f, "ahead"), 0);
    fx_take(f, fx_at(2026, 11, 25, 9, 0), "A", NULL);
    assert_string_equal(fx_str(f, "number"), "A002");
    assert_int_equal(fx_int(f, "ahead"), 1);
    /* day.close on demand expires what waits and says how many. */
    fx_ok(f, "day.close", ADMIN, fx_at(2026, 11, 25, 12, 0), NULL);
    assert_int_equal(fx_int(f, "expired"), 2);
    fx_ok(f, "day.close", ADMIN, fx_at(2026, 11, 25, 12, 1), NULL);
    assert_int_equal(fx_int(f, "expired"), 0);
    /* Friday evening belongs to Monday; the weekend writes no close. */
    fx_take(f, fx_at(2026, 11, 27, 18, 0), "A", NULL);
    assert_string_equal(fx_str(f, "ticket_id"), "20261130-A001");
    n_due = f->n_due;
    fx_ok(f, "ticket.get", KIOSK, fx_at(2026, 11, 30, 16, 59), "{ticket_id: 20261130-A001}");
    assert_string_equal(fx_str(f, "state"), "waiting");
    assert_int_equal(f->n_due, n_due);
    fx_free(f);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_classes_and_lines),
        cmocka_unit_test(test_window_order),
        cmocka_unit_test(test_appointment_slot_edges),
        cmocka_unit_test(test_appointment_book_rules),
        cmocka_unit_test(test_fcfs_within_class),
        cmocka_unit_test(test_transfer_keeps_time),
        cmocka_unit_test(test_no_show_and_return),
        cmocka_unit_test(test_one_current_ticket),
        cmocka_unit_test(test_paused_and_closed_windows),
        cmocka_unit_test(test_day_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
