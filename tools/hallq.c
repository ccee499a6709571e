/* tools/hallq.c: the hallq command-line tool: its options and usage.
 *
 * One run is one command over one connection: connect to the listener of
 * the command's role, hello with a token, one request, print the result
 * (readable text, or JSON with --json), exit 0 ok, 1 error answer, 2
 * usage, 3 connection failure. The global options may stand anywhere on
 * the line; the commands are in hallq_cmd.c. Defaults follow the demo
 * hall (TCP 127.0.0.1:7420, ./hallq-data/hallq.sock, its tokens). */
#include "tools/audit.h"
#include "tools/hallq.h"
#include "daemon/hall/hall.h"
#include "wal/wal.h"

#include <stdlib.h>
#include <string.h>

void hq_usage(FILE *f)
{
    fputs("usage: hallq [OPTIONS] COMMAND ...\n"
          "\n"
          "kiosk (TCP, kiosk-demo):\n"
          "  ticket take LINE [--priority] [--appointment CODE] [--case CASE_NO] [--idem K]\n"
          "  ticket get TICKET_ID\n"
          "  ticket return TICKET_ID [--idem K]\n"
          "  appointment book LINE SLOT    SLOT: ms, or local 'YYYY-MM-DD HH:MM'\n"
          "  appointment get CODE\n"
          "  case get CASE_NO              (also as a window or department)\n"
          "  rate (--ticket ID | --case CASE_NO) SCORE [--comment TEXT] [--idem K]\n"
          "window (TCP; needs --window ID or --token TOKEN):\n"
          "  window state open|paused|closed\n"
          "  window call | recall | no-show | done\n"
          "  window transfer LINE\n"
          "  intake SERVICE --applicant person|org:ID[:NAME] [--materials M01,M02]\n"
          "         (--accept | --notify | --refuse REASON | --instant) [--idem K]\n"
          "  case supplement CASE_NO --materials M03[,...] [--idem K]\n"
          "  case deliver CASE_NO (--counter | --mail TRACKING) [--idem K]\n"
          "department (Unix socket; needs --dept ID or --token TOKEN):\n"
          "  review claim\n"
          "  review list [--state pending|claimed|supplement] [--limit N]\n"
          "  review decide CASE_NO approve | deny --reason TEXT | supplement --missing M03[,...]\n"
          "admin (Unix socket, admin-demo):\n"
          "  stats [--day YYYY-MM-DD]      every figure of the day, as tables\n"
          "  day close [--idem K]\n"
          "  config reload\n"
          "  clock advance MS              (hallqd --manual-clock only)\n"
          "  digest                        hash of the hall's logical state, and its LSN\n"
          "offline, on the hall's files (no daemon needed; 'hallq wal' for details):\n"
          "  wal verify | replay | dump | history | archive, state digest, report,\n"
          "  backup DIR [DATA]\n"
          "any role:\n"
          "  ping\n"
          "  catalogue                     the hall's lines, services, materials, windows,\n"
          "                                departments, with their names\n"
          "  board                         what a hall display shows: windows, waiting,\n"
          "                                the latest calls (display, window, admin)\n"
          "  watch [TOPIC ...] [--since SEQ] [--count N]   live board, one line per event;\n"
          "                                topics call line window case deadline\n"
          "                                (default: call line window), as display-demo\n"
          "  call OP [key=value ...]       any op; values: 12 (uint), true/false, null,\n"
          "                                a,b or [a] (list), \"12\" (string), k.sub=v (map)\n"
          "\n"
          "options (anywhere on the line):\n"
          "  --tcp HOST:PORT    TCP listener (HALLQ_TCP; default 127.0.0.1:7420)\n"
          "  --unix PATH        Unix socket (HALLQ_UNIX; default ./hallq-data/hallq.sock)\n"
          "  --token TOKEN      the token to hello with (HALLQ_TOKEN)\n"
          "  --window ID        act as window ID with the DEMO token window-ID (HALLQ_WINDOW)\n"
          "  --dept ID          act as department ID with the DEMO token dept-ID (HALLQ_DEPT)\n"
          "  --as ROLE          kiosk, window, display, department or admin: picks the\n"
          "                     listener and the demo token of that role\n"
          "  --via tcp|unix     the listener, whatever the role\n"
          "  --json             print the result map as JSON\n"
          "  --lang zh|en       names of lines, services, departments, materials: the\n"
          "                     config's Chinese ones where it has them (zh, default)\n"
          "                     or English (en)\n"
          "  --timeout MS       per request (default 30000; 0 waits for ever)\n"
          "  --version          print hallq's version, its rules and WAL format versions\n"
          "\n"
          "exit status: 0 ok, 1 error answer (code and message on stderr), 2 usage,\n"
          "3 connection failure. Times print in the local zone (set TZ to the hall's).\n",
          f);
}

/* Takes a global option at av[*i] (with its value) into o. Returns 1 when
 * it was one, 0 when not, or -1 (usage) on a bad value. */
static int global_opt(hq_opts *o, int ac, char **av, int *i)
{
    static const char *const with_value[] = {"--tcp", "--unix", "--token", "--window",  "--dept",
                                             "--as",  "--via",  "--lang",  "--timeout", NULL};
    const char *w = av[*i];
    if (!strcmp(w, "--json")) {
        o->json = true;
        return 1;
    }
    for (int k = 0; with_value[k]; k++) {
        size_t nl = strlen(with_value[k]);
        const char *val;
        if (!strncmp(w, with_value[k], nl) && w[nl] == '=')
            val = w + nl + 1;
        else if (!strcmp(w, with_value[k])) {
            if (*i + 1 >= ac) {
                hq_usage_error("%s needs a value", w);
                return -1;
            }
            val = av[++*i];
        } else
            continue;
        const char *name = with_value[k];
        if (!strcmp(name, "--as")) {
            int r = hq_role_find(val);
            if (r < 0) {
                hq_usage_error("--as: no role '%s' (kiosk, window, display, department, "
                               "admin)",
                               val);
                return -1;
            }
            o->as = r;
        } else if (!strcmp(name, "--via")) {
            if (strcmp(val, "tcp") && strcmp(val, "unix")) {
                hq_usage_error("--via: tcp or unix, not '%s'", val);
                return -1;
            }
            o->via = val[0];
        } else if (!strcmp(name, "--lang")) {
            if (strcmp(val, "zh") && strcmp(val, "en")) {
                hq_usage_error("--lang: zh or en, not '%s'", val);
                return -1;
            }
            o->lang_en = val[0] == 'e';
        } else if (!strcmp(name, "--timeout")) {
            if (!hq_all_digits(val) || strlen(val) > 9) {
                hq_usage_error("--timeout: a number of ms, not '%s'", val);
                return -1;
            }
            o->timeout_ms = atoi(val);
        } else if (!strcmp(name, "--tcp")) {
            o->tcp = val;
        } else if (!strcmp(name, "--unix")) {
            o->unix_path = val;
        } else if (!strcmp(name, "--token")) {
            o->token = val;
        } else if (!strcmp(name, "--window")) {
            o->window = val;
        } else {
            o->dept = val;
        }
        return 1;
    }
    return 0;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int main(int argc, char **argv)
{
    /* The offline commands (wal, state, report) work on files, not on a
     * connection: tools/audit.c. */
    int offline = argc > 1 ? audit_main(argc - 1, argv + 1) : -1;
    if (offline >= 0)
        return offline;

    hq_opts o = {
        .tcp = env("HALLQ_TCP"),
        .unix_path = env("HALLQ_UNIX"),
        .token = env("HALLQ_TOKEN"),
        .window = env("HALLQ_WINDOW"),
        .dept = env("HALLQ_DEPT"),
        .as = -1,
        .timeout_ms = 30000,
    };
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n = 0;
    if (!rest) {
        fputs("hallq: out of memory\n", stderr);
        return HQ_EXIT_ERROR;
    }
    bool only_words = false;
    for (int i = 1; i < argc; i++) {
        if (!only_words && !strcmp(argv[i], "--")) {
            only_words = true;
            continue;
        }
        if (!only_words && !strcmp(argv[i], "--version")) {
            printf("hallq %s, rules %d, wal format %d\n", HALLQ_VERSION, HALL_RULES_VERSION,
                   WAL_FORMAT_VERSION);
            free(rest);
            return HQ_EXIT_OK;
        }
        if (!only_words && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
            hq_usage(stdout);
            free(rest);
            return HQ_EXIT_OK;
        }
        int g = only_words ? 0 : global_opt(&o, argc, argv, &i);
        if (g < 0) {
            free(rest);
            return HQ_EXIT_USAGE;
        }
        if (g == 0)
            rest[n++] = argv[i];
    }
    int rc;
    if (n == 0) {
        hq_usage(stderr);
        rc = HQ_EXIT_USAGE;
    } else {
        rc = hq_command(&o, n, rest);
    }
    free(rest);
    return rc;
}
