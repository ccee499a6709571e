/* tools/hallq.h: what the files of the hallq command-line tool share.
 *
 * hallq.c parses the global options and picks the command; hallq_cmd.c
 * turns each command's words into one request; hallq_conn.c connects,
 * says hello and sends it; hallq_print.c prints results as JSON or text;
 * hallq_show.c has the readable renderers of particular results (tickets,
 * cases, stats); hallq_watch.c is the live board. Nothing here keeps
 * state between requests: one run of hallq is one connection. */
#ifndef HALLQ_TOOLS_HALLQ_H
#define HALLQ_TOOLS_HALLQ_H

#include "proto/client.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, as the README documents them. */
enum {
    HQ_EXIT_OK = 0,
    HQ_EXIT_ERROR = 1,   /* the server answered with an error */
    HQ_EXIT_USAGE = 2,   /* the command line is wrong */
    HQ_EXIT_CONNECT = 3, /* no connection, or it broke */
};

/* The roles of the protocol, in the order of HALL_ROLE_* bits. */
typedef enum hq_role {
    HQ_KIOSK,
    HQ_WINDOW,
    HQ_DISPLAY,
    HQ_DEPARTMENT,
    HQ_ADMIN,
    HQ_ROLE__COUNT
} hq_role;
#define HQ_BIT(r) (1u << (r))
#define HQ_ANY 0x1fu

const char *hq_role_name(hq_role r);
/* The role of a name, or -1. */
int hq_role_find(const char *name);

/* The options every command takes, from the command line or the
 * environment (HALLQ_TCP, HALLQ_UNIX, HALLQ_TOKEN, HALLQ_WINDOW,
 * HALLQ_DEPT). NULL or -1: not given. */
typedef struct hq_opts {
    const char *tcp, *unix_path, *token, *window, *dept;
    int as;  /* a role forced by --as */
    int via; /* 't' or 'u' forced by --via, else 0 */
    bool json;
    bool lang_en; /* --lang en: English names (default: the config's Chinese ones) */
    int timeout_ms;
} hq_opts;

/* ---- request arguments (hallq_args.c) ---- */

typedef enum hq_type {
    HQ_T_AUTO,      /* `call`: 12 is a uint, true/false a bool, a,b or [a] a list */
    HQ_T_STR,       /* always a string */
    HQ_T_UINT,      /* digits only, checked by the caller */
    HQ_T_BOOL,      /* "true" or "false" */
    HQ_T_LIST,      /* a comma-separated list of strings; "" is the empty list */
    HQ_T_APPLICANT, /* KIND:ID[:NAME] -> {kind, id, name?} */
} hq_type;

typedef struct hq_kv {
    const char *key; /* may be "outer.inner" (one level of nesting) */
    const char *val;
    hq_type type;
} hq_kv;

#define HQ_ARGS_MAX 64

typedef struct hq_args {
    hq_kv kv[HQ_ARGS_MAX];
    int n;
} hq_args;

/* Adds one argument; a key given twice keeps the last value. Returns false
 * (with a message on stderr) when there are too many. */
bool hq_args_add(hq_args *a, const char *key, const char *val, hq_type t);
/* Packs the arguments as one map into b (reset first). Returns 0, or -1
 * with a message on stderr (out of memory). */
int hq_args_pack(const hq_args *a, proto_buf *b);
bool hq_all_digits(const char *s);

/* ---- ops and roles (hallq_conn.c) ---- */

/* An op of the protocol, with the roles that may call it (as the daemon's
 * HALL_OP_MAP has them) and the role hallq uses for it by default. */
typedef struct hq_op {
    const char *name;
    unsigned roles;
    hq_role def;
} hq_op;

/* The op of a name, or NULL (an op this hallq does not know). */
const hq_op *hq_op_find(const char *name);
/* The role a command runs as: --as; else window when the op allows it and
 * a window was named; else department likewise; else the op's default. */
hq_role hq_pick_role(const hq_opts *o, const hq_op *op);

/* ---- one connection (hallq_conn.c) ---- */

typedef struct hq_conn {
    proto_client pc;
    hq_role role;
    char id[64];         /* the identity hello answered (W01, mkt, K1...) */
    bool connected;      /* pc holds a socket to close */
    const char *op;      /* the op being run, for messages */
    bool quiet;          /* an error answer is not printed (hq_names_load) */
    const hq_args *args; /* its arguments, for renderers */
} hq_conn;

/* The text of argument `key` of the request being run, or NULL. */
const char *hq_arg(const hq_conn *c, const char *key);

/* Connects to the listener of `role` and says hello with its token.
 * Returns an exit status; on anything but 0 a message is on stderr and
 * the connection is closed. */
int hq_connect(hq_conn *c, const hq_opts *o, hq_role role);
/* Sends one request (args: a packed map or NULL) and waits for its answer,
 * skipping pushed events. On 0, *res is the result map (valid until the
 * next request). Else the exit status, with the error on stderr as
 * "hallq: OP: CODE: MESSAGE". */
int hq_request(hq_conn *c, const char *op, const proto_buf *args, const msgpack_object **res);
void hq_close(hq_conn *c);

/* A readable rendering of one op's result. */
typedef void (*hq_render)(const hq_conn *c, const msgpack_object *res);

/* The whole of a simple command: picks the role of `op`, connects, sends,
 * prints the result with `render` (or as JSON with --json). Returns the
 * exit status. */
int hq_run(const hq_opts *o, const char *op, const hq_args *a, hq_render render);

/* ---- printing (hallq_print.c) ---- */

/* JSON of any object: indented when `pretty`, else on one line. Strings
 * that are not valid UTF-8 get U+FFFD for each bad byte, so the output is
 * always valid JSON. */
void hq_json(FILE *f, const msgpack_object *o, bool pretty);
/* A string for a terminal: control characters and bad UTF-8 become '?'. */
void hq_text(FILE *f, const char *s, uint32_t n);
/* A result as indented "key: value" lines; times (`*_ms`) also as local
 * time. An empty map prints "ok". */
void hq_show_generic(const msgpack_object *m);
/* Local time of ms since the epoch: "YYYY-MM-DD HH:MM:SS" or "HH:MM:SS". */
void hq_fmt_time(char *buf, size_t n, int64_t ms, bool with_date);

/* Map look-ups; NULL when `m` is not a map or has no such key. */
const msgpack_object *hq_get(const msgpack_object *m, const char *key);
/* The string at key (sanitised, at most n-1 bytes) or `dflt`. */
const char *hq_get_str(const msgpack_object *m, const char *key, char *buf, size_t n,
                       const char *dflt);
/* The integer at key, or `dflt` when absent or not an integer. */
int64_t hq_get_int(const msgpack_object *m, const char *key, int64_t dflt);
bool hq_get_bool(const msgpack_object *m, const char *key);
/* A nil, absent or non-map value. */
bool hq_is_nil(const msgpack_object *o);

/* ---- renderers (hallq_show.c) ---- */

/* hq_show_generic as a renderer (`hallq call`). */
void hq_show_generic_render(const hq_conn *c, const msgpack_object *r);
void hq_show_ping(const hq_conn *c, const msgpack_object *r);
void hq_show_ticket_take(const hq_conn *c, const msgpack_object *r);
void hq_show_ticket(const hq_conn *c, const msgpack_object *r);
void hq_show_ticket_return(const hq_conn *c, const msgpack_object *r);
void hq_show_appointment(const hq_conn *c, const msgpack_object *r);
void hq_show_window_state(const hq_conn *c, const msgpack_object *r);
void hq_show_window_call(const hq_conn *c, const msgpack_object *r);
void hq_show_ack(const hq_conn *c, const msgpack_object *r);
void hq_show_intake(const hq_conn *c, const msgpack_object *r);
void hq_show_case(const hq_conn *c, const msgpack_object *r);
void hq_show_supplement(const hq_conn *c, const msgpack_object *r);
void hq_show_claim(const hq_conn *c, const msgpack_object *r);
void hq_show_review_list(const hq_conn *c, const msgpack_object *r);
void hq_show_decide(const hq_conn *c, const msgpack_object *r);
void hq_show_stats(const hq_conn *c, const msgpack_object *r);
void hq_show_day_close(const hq_conn *c, const msgpack_object *r);
void hq_show_config(const hq_conn *c, const msgpack_object *r);
void hq_show_clock(const hq_conn *c, const msgpack_object *r);
void hq_show_digest(const hq_conn *c, const msgpack_object *r);

/* ---- names (hallq_names.c) ---- */

/* Reads the hall's names with `catalogue` on c (once per run; an error
 * answer is not shown and leaves ids only). Call before the request whose
 * result is rendered. */
void hq_names_load(hq_conn *c, const hq_opts *o);
/* The name of a line ('l'), service ('s'), department ('d') or material
 * ('m') in the language asked for, or NULL. */
const char *hq_name(char kind, const char *id);
bool hq_names_known(void); /* whether the catalogue was read */
/* "ID NAME", or "ID" when it has no name, into buf. */
const char *hq_named(char *buf, size_t n, char kind, const char *id);
/* Terminal columns of a UTF-8 string (CJK takes two); hq_pad prints s
 * and spaces up to `width` columns. */
size_t hq_width(const char *s);
void hq_pad(const char *s, size_t width);
void hq_show_board(const hq_conn *c, const msgpack_object *r);
void hq_show_catalogue(const hq_conn *c, const msgpack_object *r);

/* ---- commands (hallq_cmd.c, hallq_watch.c) ---- */

/* Runs the command in av[0..ac) (av[0] is its first word). Returns the
 * exit status. */
int hq_command(const hq_opts *o, int ac, char **av);
int hq_watch(const hq_opts *o, int ac, char **av);
/* Prints "hallq: MESSAGE" and the usage hint to stderr; returns 2. */
int hq_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hq_usage(FILE *f);

#endif
