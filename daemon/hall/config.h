/* daemon/hall/config.h: the hall's configuration, parsed from YAML text.
 *
 * Parsing is a pure function of the text: the daemon reads the file, the
 * replay takes the text from the WAL's config record, and both get the same
 * hall. Every error names the file, the line and what is wrong. The full
 * key reference is docs/CONFIG.md. */
#ifndef HALLQ_HALL_CONFIG_H
#define HALLQ_HALL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HALL_ID_MAX 32 /* ids: lines, windows, departments, materials, services */
#define HALL_NAME_MAX 96
#define HALL_MAX_ITEMS 256
#define HALL_MAX_LIST 32 /* lines per window, departments per service, checklist */

typedef enum hall_role {
    HALL_ROLE_SYSTEM = 0, /* the daemon itself: time-driven records */
    HALL_ROLE_KIOSK = 1,
    HALL_ROLE_WINDOW = 2,
    HALL_ROLE_DISPLAY = 3,
    HALL_ROLE_DEPARTMENT = 4,
    HALL_ROLE_ADMIN = 5,
    HALL_ROLE__COUNT
} hall_role;

#define HALL_ROLE_BIT(r) (1u << (r))

const char *hall_role_name(hall_role r);
int hall_role_from_name(const char *s); /* -1 if unknown */

typedef struct hall_line {
    char id[HALL_ID_MAX + 1];
    char name[HALL_NAME_MAX + 1];
    char name_zh[HALL_NAME_MAX + 1];
    bool pickup; /* the result pickup line (出件): its tickets name a ready case */
} hall_line;

typedef struct hall_department {
    char id[HALL_ID_MAX + 1];
    char name[HALL_NAME_MAX + 1];
    char name_zh[HALL_NAME_MAX + 1];
} hall_department;

typedef struct hall_material {
    char code[HALL_ID_MAX + 1];
    char name[HALL_NAME_MAX + 1];
    char name_zh[HALL_NAME_MAX + 1];
} hall_material;

typedef enum hall_service_kind {
    HALL_SERVICE_REVIEW = 0,
    HALL_SERVICE_INSTANT = 1
} hall_service_kind;

typedef struct hall_service {
    char code[HALL_ID_MAX + 1];
    char name[HALL_NAME_MAX + 1];
    char name_zh[HALL_NAME_MAX + 1];
    int line; /* index into lines */
    int departments[HALL_MAX_LIST];
    int n_departments;
    hall_service_kind kind;
    int days;                     /* committed time limit in working days */
    int checklist[HALL_MAX_LIST]; /* indexes into materials */
    int n_checklist;
} hall_service;

/* How a window picks among its lines' tickets of the best class waiting
 * (PROTOCOL.md 1.2): the earliest of any line, or the earliest of the first
 * line (in the window's order) that has one. */
typedef enum hall_window_order {
    HALL_ORDER_EARLIEST = 0,
    HALL_ORDER_LINES = 1
} hall_window_order;

const char *hall_window_order_name(hall_window_order o);

typedef struct hall_window {
    char id[HALL_ID_MAX + 1];
    char kind[HALL_NAME_MAX + 1];
    int lines[HALL_MAX_LIST]; /* indexes into lines, in serving order */
    int n_lines;
    hall_window_order order;
} hall_window;

/* A token is given either as itself (`token:`, in the config file and in
 * records written by builds before 0.2) or as its salted hash
 * (`token_hash: "b2:SALT:HASH"`, what the WAL and the state hold; see
 * hall_config_stored). A config holds one form only. */
#define HALL_TOKEN_SALT_LEN 16
#define HALL_TOKEN_HASH_LEN 32

typedef struct hall_token {
    char token[128]; /* "" when the config holds hashes */
    uint8_t hash[HALL_TOKEN_HASH_LEN];
    hall_role role;
    char id[HALL_ID_MAX + 1];
} hall_token;

typedef struct hall_listener {
    char addr[128]; /* tcp, http: HOST:PORT ("" = no HTTP listener); unix: path ("" =
                     * DATA/hallq.sock) */
    uint32_t roles; /* HALL_ROLE_BIT mask */
} hall_listener;

/* Days are counted from 1970-01-01 in the hall's local time. */
typedef struct hall_calendar {
    int64_t utc_offset_ms;
    int open_min, close_min;  /* minutes after local midnight */
    uint8_t working_weekdays; /* bit 0 = Sunday ... bit 6 = Saturday */
    int32_t *holidays;        /* sorted local day numbers */
    int n_holidays;
    int32_t *extra_days; /* sorted */
    int n_extra_days;
} hall_calendar;

typedef struct hall_rules {
    int64_t claim_lease_ms;
    int64_t no_show_grace_ms;
    int return_behind;
    int64_t appointment_window_ms;
    int day_close_min;
    int64_t default_service_ms;
} hall_rules;

typedef struct hall_limits {
    uint32_t max_frame;
    uint32_t max_inflight;
    uint32_t max_connections;
    uint64_t output_cap;
    uint32_t hello_timeout_ms; /* a connection must say hello within this */
    uint32_t frame_timeout_ms; /* a frame begun must be complete within this */
    uint32_t kiosk_rate;       /* requests per second per kiosk connection (0: no limit) */
    uint32_t kiosk_burst;      /* ... with bursts up to this many */
} hall_limits;

typedef struct hall_wal_conf {
    uint64_t segment_bytes;
    uint64_t disk_reserve_bytes;
    bool fsync;
    /* The longest a sync waits for the requests of the connections the
     * last one answered (daemon/gcommit.c), microseconds; 0: never; -1:
     * auto (the measured sync time, 500 us to 2 ms). */
    int64_t commit_hold_us;
} hall_wal_conf;

typedef struct hall_state_conf {
    uint64_t map_bytes; /* LMDB's initial map size; it doubles when full */
} hall_state_conf;

/* Personal data kept at the edge (daemon/pii.h). */
typedef struct hall_pii_conf {
    bool keep_names; /* pii.names: keep (true) or mask (false, the default) */
} hall_pii_conf;

typedef struct hall_config {
    char hall_id[HALL_ID_MAX + 1];
    char name[HALL_NAME_MAX + 1];
    char time_zone[64];
    bool has_start_ms;
    int64_t start_ms;

    hall_calendar cal;
    hall_rules rules;
    hall_limits limits;
    hall_listener tcp, unix_, http;
    hall_wal_conf wal;
    hall_state_conf state;
    hall_pii_conf pii;
    /* log.level: "error", "warn", "info" or "debug" ("" when not set: the
     * daemon's default); hallqd's --log-level overrides it. */
    char log_level[8];

    hall_line *lines;
    int n_lines;
    hall_department *departments;
    int n_departments;
    hall_material *materials;
    int n_materials;
    hall_service *services;
    int n_services;
    hall_window *windows;
    int n_windows;
    hall_token *tokens;
    int n_tokens;
    bool tokens_hashed; /* the tokens are given as token_hash (all with token_salt) */
    uint8_t token_salt[HALL_TOKEN_SALT_LEN];

    /* BLAKE2b-256 of the text: the config's identity. Only a config with
     * no raw token has one (all zero otherwise: an unsalted hash over a
     * token's text would let a guess be checked); compare the stored
     * forms (hall_config_stored). */
    uint8_t sha[32];
    char *text; /* the text it was parsed from (owned) */
    size_t text_len;
} hall_config;

/* Parses YAML text. `origin` names it in error messages (a file name, or
 * "WAL record 57"). On error returns -1 and writes "FILE:LINE: what" into
 * err; *out is untouched. The result is freed with hall_config_free. */
int hall_config_parse(const char *text, size_t len, const char *origin, hall_config **out,
                      char *err, size_t errlen);
void hall_config_free(hall_config *c);

/* Lookups by id: index or -1. */
int hall_config_line(const hall_config *c, const char *id, size_t n);
/* Whether some line is the pickup line. */
bool hall_config_has_pickup(const hall_config *c);
int hall_config_department(const hall_config *c, const char *id, size_t n);
int hall_config_material(const hall_config *c, const char *code, size_t n);
int hall_config_service(const hall_config *c, const char *code, size_t n);
int hall_config_window(const hall_config *c, const char *id, size_t n);
/* The token entry, compared in constant time over all tokens; NULL if none.
 * A hashed config hashes `token` with its salt and compares hashes. */
const hall_token *hall_config_token(const hall_config *c, const char *token, size_t n);

/* The stored form of a config: the same YAML (re-emitted by libyaml, so
 * comments and layout go) with each `token: X` replaced by
 * `token_hash: "b2:SALT:HASH"`, HASH = BLAKE2b-256 keyed by the 16-byte
 * salt. This is the text the WAL's config records and the state hold.
 * A config that holds no raw token is returned as a copy. 0 with *out
 * (freed with hall_config_free), or -1 with err set. */
int hall_config_stored(const hall_config *c, const uint8_t salt[HALL_TOKEN_SALT_LEN],
                       hall_config **out, char *err, size_t errlen);
/* The salt for a new stored form of `c` when `cur` is in force: cur's
 * salt when it has one (so an unchanged file gives the same stored text),
 * else BLAKE2b of c's hall id keyed by `key` (16 to 64 bytes): the hall's
 * own random pii.key for a new hall (a salt no other hall has, the same
 * for two runs sharing the key), NULL for a fixed key (a replay of a
 * record from an older build must be deterministic). */
void hall_config_salt(const hall_config *cur, const hall_config *c, const uint8_t *key,
                      size_t keylen, uint8_t salt[HALL_TOKEN_SALT_LEN]);
/* Whether the config gives one of the demo hall's public tokens
 * (examples/demo-hall.yaml): a copy of the demo config (either form). */
bool hall_config_is_demo(const hall_config *c);

/* Room a record keeps beyond a request's args: its op name, result and
 * events (hall_record_pack_ev). */
#define HALL_RECORD_SLACK 4096

/* Whether this config's records fit the WAL: a request of max_frame bytes
 * with HALL_RECORD_SLACK and `overhead` bytes of record framing, within one
 * segment of wal.segment_bytes after
 * its `seg_header` and within `max_payload`. Checked where a config file
 * is loaded (a config record replayed from an older log is not refused).
 * 0, or -1 with a message naming the fields. */
int hall_config_check_records(const hall_config *c, const char *origin, uint64_t seg_header,
                              uint64_t overhead, uint64_t max_payload, char *err, size_t errlen);

#endif
