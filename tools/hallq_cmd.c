/* tools/hallq_cmd.c: the commands of hallq, each turned into one request.
 *
 * A command is a few words (`window call`, `case deliver NO --mail T`);
 * its options set the op's arguments through one small table per command,
 * so that the words a clerk types and the protocol's fields stay side by
 * side. A command checks only what it must to build the request (a number
 * where the wire wants one, one outcome, the right count of words); the
 * server checks values and answers errors, which hallq prints. */
#include "tools/hallq.h"

#include "daemon/hall/hall.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

int hq_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("hallq: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(hallq --help lists the commands)\n", stderr);
    return HQ_EXIT_USAGE;
}

/* One option of a command. Without `fixed` it takes an argument, the
 * value of `key`; with `fixed` it sets key = fixed, and when `key2` is set
 * too it takes an argument for key2 (--refuse REASON, --mail TRACKING). */
typedef struct opt {
    const char *name;
    const char *key;
    hq_type type;
    const char *fixed;
    const char *key2;
    int group; /* options of one group exclude each other; 0: none */
} opt;

#define MAX_POS 8

typedef struct parsed {
    char *pos[MAX_POS];
    int npos;
    int group_hit[8]; /* index+1 of the option that took each group */
} parsed;

/* Parses av[0..ac) against opts into a (options) and p (other words).
 * Returns 0 or the usage status. */
static int parse(const char *cmd, int ac, char **av, const opt *opts, hq_args *a, parsed *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < ac; i++) {
        char *w = av[i];
        if (strncmp(w, "--", 2) || !w[2]) {
            if (p->npos == MAX_POS)
                return hq_usage_error("%s: too many words", cmd);
            p->pos[p->npos++] = w;
            continue;
        }
        const char *eq = strchr(w, '=');
        size_t nl = eq ? (size_t)(eq - w) : strlen(w);
        const opt *o = NULL;
        int idx = 0;
        for (int j = 0; opts && opts[j].name; j++)
            if (strlen(opts[j].name) == nl && !strncmp(opts[j].name, w, nl)) {
                o = &opts[j];
                idx = j;
            }
        if (!o)
            return hq_usage_error("%s: unknown option '%s'", cmd, w);
        bool takes = !o->fixed || o->key2;
        const char *val = NULL;
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < ac)
                val = av[++i];
            else
                return hq_usage_error("%s: %s needs a value", cmd, o->name);
        } else if (eq) {
            return hq_usage_error("%s: %s takes no value", cmd, o->name);
        }
        if (o->group) {
            int *hit = &p->group_hit[o->group];
            if (*hit && *hit != idx + 1)
                return hq_usage_error("%s: %s and %s exclude each other", cmd, opts[*hit - 1].name,
                                      o->name);
            *hit = idx + 1;
        }
        if (o->type == HQ_T_UINT && val && !hq_all_digits(val))
            return hq_usage_error("%s: %s needs a number, not '%s'", cmd, o->name, val);
        if (o->type == HQ_T_APPLICANT && val && !strchr(val, ':'))
            return hq_usage_error("%s: %s is KIND:ID[:NAME] (person:110101..., org:91110...)", cmd,
                                  o->name);
        bool ok = o->fixed ? hq_args_add(a, o->key, o->fixed, o->key2 ? HQ_T_STR : o->type) &&
                                 (!o->key2 || hq_args_add(a, o->key2, val, HQ_T_STR))
                           : hq_args_add(a, o->key, val, o->type);
        if (!ok)
            return HQ_EXIT_USAGE;
    }
    return 0;
}

static bool has(const hq_args *a, const char *key)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->kv[i].key, key))
            return true;
    return false;
}

static int words(const char *cmd, const parsed *p, int want, const char *what)
{
    if (p->npos != want)
        return hq_usage_error("%s: expected %s", cmd, what);
    return 0;
}

#define IDEM                                                                                       \
    {                                                                                              \
        "--idem", "idem", HQ_T_STR, NULL, NULL, 0                                                  \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, NULL, 0, NULL, NULL, 0                                                               \
    }

/* ---- kiosk ---- */

static int cmd_ticket(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    if (ac < 2)
        return hq_usage_error("ticket: take, get or return?");
    const char *sub = av[1];
    if (!strcmp(sub, "take")) {
        static const opt opts[] = {{"--priority", "priority", HQ_T_BOOL, "true", NULL, 0},
                                   {"--appointment", "appointment", HQ_T_STR, NULL, NULL, 0},
                                   {"--case", "case_no", HQ_T_STR, NULL, NULL, 0},
                                   IDEM,
                                   END};
        if ((rc = parse("ticket take", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("ticket take", &p, 1, "a LINE")))
            return rc;
        hq_args_add(&a, "line", p.pos[0], HQ_T_STR);
        return hq_run(o, "ticket.take", &a, hq_show_ticket_take);
    }
    if (!strcmp(sub, "get")) {
        if ((rc = parse("ticket get", ac - 2, av + 2, NULL, &a, &p)) ||
            (rc = words("ticket get", &p, 1, "a TICKET_ID")))
            return rc;
        hq_args_add(&a, "ticket_id", p.pos[0], HQ_T_STR);
        return hq_run(o, "ticket.get", &a, hq_show_ticket);
    }
    if (!strcmp(sub, "return")) {
        static const opt opts[] = {IDEM, END};
        if ((rc = parse("ticket return", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("ticket return", &p, 1, "a TICKET_ID")))
            return rc;
        hq_args_add(&a, "ticket_id", p.pos[0], HQ_T_STR);
        return hq_run(o, "ticket.return", &a, hq_show_ticket_return);
    }
    return hq_usage_error("ticket: unknown command '%s'", sub);
}

/* A slot: ms since the epoch, or a local time "YYYY-MM-DD HH:MM[:SS]"
 * (or with a 'T'), into buf as ms. Returns false when it is neither. */
static bool slot_ms(const char *s, char *buf, size_t n)
{
    if (hq_all_digits(s)) {
        snprintf(buf, n, "%s", s);
        return true;
    }
    struct tm tm = {0};
    int y, mo, d, h, mi, sec = 0, used = 0;
    char sep;
    int got =
        sscanf(s, "%4d-%2d-%2d%c%2d:%2d%n:%2d%n", &y, &mo, &d, &sep, &h, &mi, &used, &sec, &used);
    if (got < 6 || (sep != ' ' && sep != 'T') || s[used] != 0)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || t < 0)
        return false;
    snprintf(buf, n, "%lld", (long long)t * 1000);
    return true;
}

static int cmd_appointment(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    char ms[32];
    static const opt opts[] = {IDEM, END};
    if (ac >= 2 && !strcmp(av[1], "get")) {
        if ((rc = parse("appointment get", ac - 2, av + 2, NULL, &a, &p)) ||
            (rc = words("appointment get", &p, 1, "a CODE")))
            return rc;
        hq_args_add(&a, "code", p.pos[0], HQ_T_STR);
        return hq_run(o, "appointment.get", &a, hq_show_generic_render);
    }
    if (ac < 2 || strcmp(av[1], "book"))
        return hq_usage_error("appointment: expected 'appointment book LINE SLOT' or "
                              "'appointment get CODE'");
    if ((rc = parse("appointment book", ac - 2, av + 2, opts, &a, &p)) ||
        (rc = words("appointment book", &p, 2, "LINE SLOT")))
        return rc;
    if (!slot_ms(p.pos[1], ms, sizeof ms))
        return hq_usage_error("appointment book: SLOT is ms since the epoch or a local time "
                              "'YYYY-MM-DD HH:MM', not '%s'",
                              p.pos[1]);
    hq_args_add(&a, "line", p.pos[0], HQ_T_STR);
    hq_args_add(&a, "slot_ms", ms, HQ_T_UINT);
    return hq_run(o, "appointment.book", &a, hq_show_appointment);
}

static int cmd_rate(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    static const opt opts[] = {{"--ticket", "ticket_id", HQ_T_STR, NULL, NULL, 1},
                               {"--case", "case_no", HQ_T_STR, NULL, NULL, 1},
                               {"--comment", "comment", HQ_T_STR, NULL, NULL, 0},
                               IDEM,
                               END};
    if ((rc = parse("rate", ac - 1, av + 1, opts, &a, &p)) ||
        (rc = words("rate", &p, 1, "a SCORE (1-5)")))
        return rc;
    if (!p.group_hit[1])
        return hq_usage_error("rate: --ticket ID or --case NO");
    if (!hq_all_digits(p.pos[0]))
        return hq_usage_error("rate: SCORE is a number (1-5), not '%s'", p.pos[0]);
    hq_args_add(&a, "score", p.pos[0], HQ_T_UINT);
    return hq_run(o, "rate", &a, hq_show_ack);
}

/* ---- cases (kiosk, window, department) ---- */

static int cmd_case(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    if (ac < 2)
        return hq_usage_error("case: get, supplement or deliver?");
    const char *sub = av[1];
    if (!strcmp(sub, "get")) {
        if ((rc = parse("case get", ac - 2, av + 2, NULL, &a, &p)) ||
            (rc = words("case get", &p, 1, "a CASE_NO")))
            return rc;
        hq_args_add(&a, "case_no", p.pos[0], HQ_T_STR);
        return hq_run(o, "case.get", &a, hq_show_case);
    }
    if (!strcmp(sub, "supplement")) {
        static const opt opts[] = {
            {"--materials", "materials", HQ_T_LIST, NULL, NULL, 0}, IDEM, END};
        if ((rc = parse("case supplement", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("case supplement", &p, 1, "a CASE_NO")))
            return rc;
        if (!has(&a, "materials"))
            return hq_usage_error("case supplement: --materials M03[,M04...] is required");
        hq_args_add(&a, "case_no", p.pos[0], HQ_T_STR);
        return hq_run(o, "case.supplement", &a, hq_show_supplement);
    }
    if (!strcmp(sub, "deliver")) {
        static const opt opts[] = {{"--counter", "method", HQ_T_STR, "counter", NULL, 1},
                                   {"--mail", "method", HQ_T_STR, "mail", "tracking", 1},
                                   IDEM,
                                   END};
        if ((rc = parse("case deliver", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("case deliver", &p, 1, "a CASE_NO")))
            return rc;
        if (!p.group_hit[1])
            return hq_usage_error("case deliver: --counter or --mail TRACKING");
        hq_args_add(&a, "case_no", p.pos[0], HQ_T_STR);
        return hq_run(o, "case.deliver", &a, hq_show_ack);
    }
    return hq_usage_error("case: unknown command '%s'", sub);
}

/* ---- window ---- */

static int cmd_intake(const hq_opts *o, const char *cmd, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    static const opt opts[] = {{"--applicant", "applicant", HQ_T_APPLICANT, NULL, NULL, 0},
                               {"--materials", "materials", HQ_T_LIST, NULL, NULL, 0},
                               {"--accept", "outcome", HQ_T_STR, "accept", NULL, 1},
                               {"--notify", "outcome", HQ_T_STR, "notify", NULL, 1},
                               {"--refuse", "outcome", HQ_T_STR, "refuse", "reason", 1},
                               {"--instant", "outcome", HQ_T_STR, "instant", NULL, 1},
                               IDEM,
                               END};
    if ((rc = parse(cmd, ac, av, opts, &a, &p)) || (rc = words(cmd, &p, 1, "a SERVICE")))
        return rc;
    if (!p.group_hit[1])
        return hq_usage_error("%s: one outcome: --accept, --notify, --refuse REASON or "
                              "--instant",
                              cmd);
    if (!has(&a, "applicant"))
        return hq_usage_error("%s: --applicant KIND:ID[:NAME] is required", cmd);
    if (!has(&a, "materials"))
        hq_args_add(&a, "materials", "", HQ_T_LIST);
    hq_args_add(&a, "service", p.pos[0], HQ_T_STR);
    return hq_run(o, "window.intake", &a, hq_show_intake);
}

static int cmd_window(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    if (ac < 2)
        return hq_usage_error("window: state, call, recall, no-show, transfer, done or intake?");
    const char *sub = av[1];
    if (!strcmp(sub, "intake"))
        return cmd_intake(o, "window intake", ac - 2, av + 2);
    if ((rc = parse("window", ac - 2, av + 2, NULL, &a, &p)))
        return rc;
    if (!strcmp(sub, "state")) {
        if ((rc = words("window state", &p, 1, "open, paused or closed")))
            return rc;
        hq_args_add(&a, "state", p.pos[0], HQ_T_STR);
        return hq_run(o, "window.state", &a, hq_show_window_state);
    }
    if (!strcmp(sub, "transfer")) {
        if ((rc = words("window transfer", &p, 1, "a LINE")))
            return rc;
        hq_args_add(&a, "line", p.pos[0], HQ_T_STR);
        return hq_run(o, "window.transfer", &a, hq_show_ack);
    }
    static const struct {
        const char *word, *op;
        hq_render render;
    } plain[] = {
        {"call", "window.call", hq_show_window_call},
        {"recall", "window.recall", hq_show_window_call},
        {"no-show", "window.no_show", hq_show_ack},
        {"no_show", "window.no_show", hq_show_ack},
        {"done", "window.done", hq_show_ack},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (!strcmp(sub, plain[i].word)) {
            if ((rc = words(plain[i].op, &p, 0, "no more words")))
                return rc;
            return hq_run(o, plain[i].op, NULL, plain[i].render);
        }
    return hq_usage_error("window: unknown command '%s'", sub);
}

/* ---- department ---- */

static int cmd_review(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    if (ac < 2)
        return hq_usage_error("review: claim, list or decide?");
    const char *sub = av[1];
    if (!strcmp(sub, "claim")) {
        if ((rc = parse("review claim", ac - 2, av + 2, NULL, &a, &p)) ||
            (rc = words("review claim", &p, 0, "no more words")))
            return rc;
        return hq_run(o, "review.claim", NULL, hq_show_claim);
    }
    if (!strcmp(sub, "list")) {
        static const opt opts[] = {{"--state", "state", HQ_T_STR, NULL, NULL, 0},
                                   {"--limit", "limit", HQ_T_UINT, NULL, NULL, 0},
                                   END};
        if ((rc = parse("review list", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("review list", &p, 0, "no more words")))
            return rc;
        return hq_run(o, "review.list", &a, hq_show_review_list);
    }
    if (!strcmp(sub, "decide")) {
        static const opt opts[] = {{"--reason", "reason", HQ_T_STR, NULL, NULL, 0},
                                   {"--missing", "missing", HQ_T_LIST, NULL, NULL, 0},
                                   IDEM,
                                   END};
        if ((rc = parse("review decide", ac - 2, av + 2, opts, &a, &p)) ||
            (rc = words("review decide", &p, 2, "CASE_NO approve|deny|supplement")))
            return rc;
        hq_args_add(&a, "case_no", p.pos[0], HQ_T_STR);
        hq_args_add(&a, "decision", p.pos[1], HQ_T_STR);
        return hq_run(o, "review.decide", &a, hq_show_decide);
    }
    return hq_usage_error("review: unknown command '%s'", sub);
}

/* ---- admin ---- */

static int cmd_admin_word(const hq_opts *o, int ac, char **av, const char *sub_word, const char *op,
                          hq_render render)
{
    hq_args a = {0};
    parsed p;
    int rc;
    static const opt opts[] = {IDEM, END};
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", av[0], sub_word);
    if (ac < 2 || strcmp(av[1], sub_word))
        return hq_usage_error("expected '%s'", cmd);
    /* Only day.close is a mutation that takes idem; config.reload has none. */
    if ((rc = parse(cmd, ac - 2, av + 2, strcmp(op, "day.close") ? NULL : opts, &a, &p)) ||
        (rc = words(cmd, &p, 0, "no more words")))
        return rc;
    return hq_run(o, op, &a, render);
}

static int cmd_stats(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    parsed p;
    int rc;
    static const opt opts[] = {{"--day", "day", HQ_T_STR, NULL, NULL, 0}, END};
    if ((rc = parse("stats", ac - 1, av + 1, opts, &a, &p)) ||
        (rc = words("stats", &p, 0, "no more words (--day YYYY-MM-DD)")))
        return rc;
    return hq_run(o, "stats", &a, hq_show_stats);
}

static int cmd_clock(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    if (ac != 3 || strcmp(av[1], "advance") || !hq_all_digits(av[2]))
        return hq_usage_error("expected 'clock advance MS'");
    hq_args_add(&a, "ms", av[2], HQ_T_UINT);
    return hq_run(o, "clock.advance", &a, hq_show_clock);
}

/* ---- any op ---- */

static int cmd_call(const hq_opts *o, int ac, char **av)
{
    hq_args a = {0};
    if (ac < 2)
        return hq_usage_error("call: expected 'call OP [key=value ...]'");
    for (int i = 2; i < ac; i++) {
        char *eq = strchr(av[i], '=');
        if (!eq || eq == av[i])
            return hq_usage_error("call: expected key=value, got '%s'", av[i]);
        *eq = 0;
        /* The daemon ignores an argument its change does not read (and
         * logs it once): say so here, where the typo was made. */
        const hall_op_def *def = hall_op_find(av[1], strlen(av[1]));
        size_t top = strcspn(av[i], "."); /* a.b=v sets args.a.b */
        if (def && def->kind == HALL_MUTATE && !hall_op_knows_arg(def, av[i], top))
            fprintf(stderr, "hallq: warning: %s has no argument '%s': the daemon ignores it\n",
                    av[1], av[i]);
        if (!hq_args_add(&a, av[i], eq + 1, HQ_T_AUTO))
            return HQ_EXIT_USAGE;
    }
    return hq_run(o, av[1], &a, hq_show_generic_render);
}

int hq_command(const hq_opts *o, int ac, char **av)
{
    const char *w = av[0];
    hq_args none = {0};
    if (!strcmp(w, "ping")) {
        if (ac != 1)
            return hq_usage_error("ping takes no words");
        return hq_run(o, "ping", &none, hq_show_ping);
    }
    if (!strcmp(w, "ticket"))
        return cmd_ticket(o, ac, av);
    if (!strcmp(w, "appointment"))
        return cmd_appointment(o, ac, av);
    if (!strcmp(w, "rate"))
        return cmd_rate(o, ac, av);
    if (!strcmp(w, "case"))
        return cmd_case(o, ac, av);
    if (!strcmp(w, "window"))
        return cmd_window(o, ac, av);
    if (!strcmp(w, "intake"))
        return cmd_intake(o, "intake", ac - 1, av + 1);
    if (!strcmp(w, "review"))
        return cmd_review(o, ac, av);
    if (!strcmp(w, "stats"))
        return cmd_stats(o, ac, av);
    if (!strcmp(w, "day"))
        return cmd_admin_word(o, ac, av, "close", "day.close", hq_show_day_close);
    if (!strcmp(w, "config"))
        return cmd_admin_word(o, ac, av, "reload", "config.reload", hq_show_config);
    if (!strcmp(w, "clock"))
        return cmd_clock(o, ac, av);
    if (!strcmp(w, "digest")) {
        if (ac != 1)
            return hq_usage_error("digest takes no words");
        return hq_run(o, "digest", &none, hq_show_digest);
    }
    if (!strcmp(w, "board") || !strcmp(w, "catalogue")) {
        if (ac != 1)
            return hq_usage_error("%s takes no words", w);
        return hq_run(o, w, &none, w[0] == 'b' ? hq_show_board : hq_show_catalogue);
    }
    if (!strcmp(w, "watch"))
        return hq_watch(o, ac, av);
    if (!strcmp(w, "call"))
        return cmd_call(o, ac, av);
    return hq_usage_error("unknown command '%s'", w);
}
