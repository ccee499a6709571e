/* daemon/hall/config.c: parses and checks the hall's YAML configuration.
 *
 * libyaml builds a document tree that keeps each node's line, so every
 * error says "FILE:LINE: what is wrong". Unknown keys are errors (a typo
 * must not silently fall back to a default). Parsing does no I/O: it gets
 * the text, from a file or from the WAL.
 *
 * This file is the entry point (hall_config_parse), free, the lookups and
 * the checks; the parsing is in config_yaml.c (shared helpers),
 * config_sections.c and config_catalogue.c (config_internal.h). */
#include "daemon/hall/config_internal.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *const role_names[HALL_ROLE__COUNT] = {"system",  "kiosk",      "window",
                                                         "display", "department", "admin"};

const char *hall_window_order_name(hall_window_order o)
{
    return o == HALL_ORDER_LINES ? "lines" : "earliest";
}

const char *hall_role_name(hall_role r)
{
    return (unsigned)r < HALL_ROLE__COUNT ? role_names[r] : "?";
}

int hall_role_from_name(const char *s)
{
    for (int i = 1; i < HALL_ROLE__COUNT; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

int hall_config_parse(const char *text, size_t len, const char *origin, hall_config **out,
                      char *err, size_t errlen)
{
    parser p = {.origin = origin, .err = err, .errlen = errlen};
    yaml_parser_t yp;
    hall_config *c = calloc(1, sizeof *c);
    if (!c || !yaml_parser_initialize(&yp)) {
        snprintf(err, errlen, "%s: out of memory", origin);
        free(c);
        return -1;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    if (!yaml_parser_load(&yp, &p.doc)) {
        snprintf(err, errlen, "%s:%zu: YAML syntax: %s", origin, yp.problem_mark.line + 1,
                 yp.problem ? yp.problem : "error");
        yaml_parser_delete(&yp);
        free(c);
        return -1;
    }
    yaml_parser_delete(&yp);
    cfg_set_defaults(c);

    static const char *const top[] = {
        "hall",        "calendar",  "rules",    "limits",  "listeners", "wal", "state", "lines",
        "departments", "materials", "services", "windows", "tokens",    "pii", "log",   NULL};
    static const char *const lkeys[] = {"tcp", "unix", "http", NULL};
    yaml_node_t *root = yaml_document_get_root_node(&p.doc);
    if (!root)
        cfg_fail(&p, NULL, "the file is empty");
    else if (cfg_check_keys(&p, root, "config", top) ||
             cfg_parse_hall(&p, c, cfg_get(&p, root, "hall")) ||
             cfg_parse_calendar(&p, c, cfg_get(&p, root, "calendar")) ||
             cfg_parse_rules(&p, c, cfg_get(&p, root, "rules")) ||
             cfg_parse_limits(&p, c, cfg_get(&p, root, "limits")) ||
             cfg_parse_wal(&p, c, cfg_get(&p, root, "wal")) ||
             cfg_parse_state(&p, c, cfg_get(&p, root, "state")) ||
             cfg_parse_pii(&p, c, cfg_get(&p, root, "pii")) ||
             cfg_parse_log(&p, c, cfg_get(&p, root, "log")) || cfg_parse_catalogue(&p, c, root)) {
        /* error already set */
    } else {
        yaml_node_t *ls = cfg_get(&p, root, "listeners");
        if (ls && !cfg_check_keys(&p, ls, "listeners", lkeys)) {
            cfg_parse_listener(&p, cfg_get(&p, ls, "tcp"), "listeners.tcp", "addr", &c->tcp);
            cfg_parse_listener(&p, cfg_get(&p, ls, "unix"), "listeners.unix", "path", &c->unix_);
            cfg_parse_listener(&p, cfg_get(&p, ls, "http"), "listeners.http", "addr", &c->http);
        }
    }
    yaml_document_delete(&p.doc);
    if (p.failed) {
        hall_config_free(c);
        return -1;
    }
    c->text = malloc(len + 1);
    if (!c->text) {
        hall_config_free(c);
        snprintf(err, errlen, "%s: out of memory", origin);
        return -1;
    }
    memcpy(c->text, text, len);
    c->text[len] = 0;
    c->text_len = len;
    if (c->tokens_hashed || c->n_tokens == 0)
        crypto_generichash(c->sha, sizeof c->sha, (const unsigned char *)text, len, NULL, 0);
    *out = c;
    return 0;
}

int hall_config_check_records(const hall_config *c, const char *origin, uint64_t seg_header,
                              uint64_t overhead, uint64_t max_payload, char *err, size_t errlen)
{
    uint64_t room = c->wal.segment_bytes - seg_header - overhead;
    if (room > max_payload)
        room = max_payload;
    room = room > HALL_RECORD_SLACK ? room - HALL_RECORD_SLACK : 0;
    if (c->limits.max_frame > room) {
        snprintf(err, errlen,
                 "%s: limits.max_frame (%u) is too large for a WAL record in a segment of "
                 "wal.segment_bytes (%" PRIu64 "): a request's record must fit one segment "
                 "with its result; make max_frame at most %" PRIu64 " or segment_bytes larger",
                 origin, c->limits.max_frame, c->wal.segment_bytes, room);
        return -1;
    }
    return 0;
}

void hall_config_free(hall_config *c)
{
    if (!c)
        return;
    free(c->cal.holidays);
    free(c->cal.extra_days);
    free(c->lines);
    free(c->departments);
    free(c->materials);
    free(c->services);
    free(c->windows);
    free(c->tokens);
    free(c->text);
    free(c);
}

#define LOOKUP(fn, arr, cnt, field)                                                                \
    int fn(const hall_config *c, const char *id, size_t n)                                         \
    {                                                                                              \
        for (int i = 0; i < c->cnt; i++)                                                           \
            if (strlen(c->arr[i].field) == n && memcmp(c->arr[i].field, id, n) == 0)               \
                return i;                                                                          \
        return -1;                                                                                 \
    }
LOOKUP(hall_config_line, lines, n_lines, id)
LOOKUP(hall_config_department, departments, n_departments, id)
LOOKUP(hall_config_material, materials, n_materials, code)
LOOKUP(hall_config_service, services, n_services, code)
LOOKUP(hall_config_window, windows, n_windows, id)
#undef LOOKUP

bool hall_config_has_pickup(const hall_config *c)
{
    for (int i = 0; i < c->n_lines; i++)
        if (c->lines[i].pickup)
            return true;
    return false;
}

const hall_token *hall_config_token(const hall_config *c, const char *token, size_t n)
{
    /* Every token is compared in full, so the time taken does not say how
     * much of a guess was right nor which entry matched. */
    const hall_token *found = NULL;
    if (c->tokens_hashed) {
        uint8_t h[HALL_TOKEN_HASH_LEN];
        crypto_generichash(h, sizeof h, (const unsigned char *)token, n, c->token_salt,
                           sizeof c->token_salt);
        for (int i = 0; i < c->n_tokens; i++)
            if (sodium_memcmp(h, c->tokens[i].hash, sizeof h) == 0)
                found = &c->tokens[i];
        return found;
    }
    for (int i = 0; i < c->n_tokens; i++) {
        const char *t = c->tokens[i].token;
        size_t tl = strlen(t);
        unsigned char diff = (unsigned char)(tl != n);
        for (size_t j = 0; j < sizeof c->tokens[i].token; j++) {
            unsigned char a = j < tl ? (unsigned char)t[j] : 0;
            unsigned char b = j < n ? (unsigned char)token[j] : 0;
            diff |= a ^ b;
        }
        if (n >= sizeof c->tokens[i].token)
            diff |= 1;
        if (!diff)
            found = &c->tokens[i];
    }
    return found;
}
