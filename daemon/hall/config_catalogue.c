/* daemon/hall/config_catalogue.c: lines, departments, materials, services, windows, tokens. */
#include "daemon/hall/config_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Duplicate ids among the first i items of an array of structs whose id is
 * at offset 0. */
static int check_dup(parser *p, yaml_node_t *list, const void *items, size_t size, int i,
                     const char *what)
{
    const char *id = (const char *)items + size * (size_t)i;
    for (int j = 0; j < i; j++)
        if (strcmp((const char *)items + size * (size_t)j, id) == 0)
            return cfg_fail(p, cfg_item(p, list, i), "%s: duplicate id '%s'", what, id);
    return 0;
}

static int parse_token(parser *p, hall_config *c, yaml_node_t *e, int i);

int cfg_parse_catalogue(parser *p, hall_config *c, yaml_node_t *root)
{
    yaml_node_t *list;
    static const char *const line_keys[] = {"id", "name", "name_zh", "pickup", NULL};
    if (cfg_parse_list(p, root, "lines", true, sizeof(hall_line), (void **)&c->lines, &c->n_lines,
                       &list))
        return -1;
    for (int i = 0; i < c->n_lines; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_line *l = &c->lines[i];
        if (cfg_check_keys(p, e, "lines[]", line_keys) ||
            cfg_parse_id(p, e, "lines[]", "id", l->id) ||
            cfg_get_str(p, e, "lines[]", "name", false, l->name, sizeof l->name) ||
            cfg_get_str(p, e, "lines[]", "name_zh", false, l->name_zh, sizeof l->name_zh) ||
            check_dup(p, list, c->lines, sizeof *l, i, "lines"))
            return -1;
        if (strlen(l->id) > 4)
            return cfg_fail(
                p, e, "lines[].id: '%s' is longer than 4 characters (it prefixes numbers)", l->id);
        yaml_node_t *pu = cfg_get(p, e, "pickup");
        if (pu) {
            const char *v = cfg_scalar(pu);
            if (v && strcmp(v, "true") == 0)
                l->pickup = true;
            else if (!v || strcmp(v, "false") != 0)
                return cfg_fail(p, pu, "lines[].pickup: expected true or false");
        }
    }
    if (cfg_parse_list(p, root, "departments", false, sizeof(hall_department),
                       (void **)&c->departments, &c->n_departments, &list))
        return -1;
    for (int i = 0; i < c->n_departments; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_department *d = &c->departments[i];
        if (cfg_check_keys(p, e, "departments[]", line_keys) ||
            cfg_parse_id(p, e, "departments[]", "id", d->id) ||
            cfg_get_str(p, e, "departments[]", "name", false, d->name, sizeof d->name) ||
            cfg_get_str(p, e, "departments[]", "name_zh", false, d->name_zh, sizeof d->name_zh) ||
            check_dup(p, list, c->departments, sizeof *d, i, "departments"))
            return -1;
    }
    static const char *const mat_keys[] = {"code", "name", "name_zh", NULL};
    if (cfg_parse_list(p, root, "materials", false, sizeof(hall_material), (void **)&c->materials,
                       &c->n_materials, &list))
        return -1;
    for (int i = 0; i < c->n_materials; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_material *m = &c->materials[i];
        if (cfg_check_keys(p, e, "materials[]", mat_keys) ||
            cfg_parse_id(p, e, "materials[]", "code", m->code) ||
            cfg_get_str(p, e, "materials[]", "name", false, m->name, sizeof m->name) ||
            cfg_get_str(p, e, "materials[]", "name_zh", false, m->name_zh, sizeof m->name_zh) ||
            check_dup(p, list, c->materials, sizeof *m, i, "materials"))
            return -1;
    }
    static const char *const svc_keys[] = {"code", "name", "name_zh",   "line", "departments",
                                           "kind", "days", "checklist", NULL};
    if (cfg_parse_list(p, root, "services", false, sizeof(hall_service), (void **)&c->services,
                       &c->n_services, &list))
        return -1;
    for (int i = 0; i < c->n_services; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_service *s = &c->services[i];
        char line[HALL_ID_MAX + 1], kind[16];
        int64_t days = 0;
        if (cfg_check_keys(p, e, "services[]", svc_keys) ||
            cfg_parse_id(p, e, "services[]", "code", s->code) ||
            cfg_get_str(p, e, "services[]", "name", false, s->name, sizeof s->name) ||
            cfg_get_str(p, e, "services[]", "name_zh", false, s->name_zh, sizeof s->name_zh) ||
            check_dup(p, list, c->services, sizeof *s, i, "services") ||
            cfg_get_str(p, e, "services[]", "line", true, line, sizeof line) ||
            cfg_get_str(p, e, "services[]", "kind", true, kind, sizeof kind) ||
            cfg_get_int(p, e, "services[]", "days", 0, 3650, &days))
            return -1;
        s->line = hall_config_line(c, line, strlen(line));
        if (s->line < 0)
            return cfg_fail(p, cfg_get(p, e, "line"), "services[%s].line: unknown line '%s'",
                            s->code, line);
        if (strcmp(kind, "review") == 0)
            s->kind = HALL_SERVICE_REVIEW;
        else if (strcmp(kind, "instant") == 0)
            s->kind = HALL_SERVICE_INSTANT;
        else
            return cfg_fail(p, cfg_get(p, e, "kind"),
                            "services[%s].kind: expected review or instant", s->code);
        s->days = (int)days;
        char what[64];
        snprintf(what, sizeof what, "services[%s].departments", s->code);
        yaml_node_t *deps = cfg_get(p, e, "departments");
        if (!deps)
            return cfg_fail(p, e, "services[%s]: 'departments' is required", s->code);
        if (cfg_parse_refs(p, c, deps, what, "department", hall_config_department, s->departments,
                           &s->n_departments))
            return -1;
        if (s->n_departments == 0)
            return cfg_fail(p, deps, "%s: a service needs at least one department", what);
        if (s->kind == HALL_SERVICE_REVIEW && s->days < 1)
            return cfg_fail(p, e, "services[%s].days: a review service needs a time limit >= 1",
                            s->code);
        snprintf(what, sizeof what, "services[%s].checklist", s->code);
        yaml_node_t *cl = cfg_get(p, e, "checklist");
        if (!cl)
            return cfg_fail(p, e, "services[%s]: 'checklist' is required", s->code);
        if (cfg_parse_refs(p, c, cl, what, "material", hall_config_material, s->checklist,
                           &s->n_checklist))
            return -1;
    }
    static const char *const win_keys[] = {"id", "lines", "kind", "order", NULL};
    if (cfg_parse_list(p, root, "windows", false, sizeof(hall_window), (void **)&c->windows,
                       &c->n_windows, &list))
        return -1;
    for (int i = 0; i < c->n_windows; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_window *w = &c->windows[i];
        if (cfg_check_keys(p, e, "windows[]", win_keys) ||
            cfg_parse_id(p, e, "windows[]", "id", w->id) ||
            cfg_get_str(p, e, "windows[]", "kind", false, w->kind, sizeof w->kind) ||
            check_dup(p, list, c->windows, sizeof *w, i, "windows"))
            return -1;
        char what[64];
        snprintf(what, sizeof what, "windows[%s].lines", w->id);
        if (cfg_parse_refs(p, c, cfg_get(p, e, "lines"), what, "line", hall_config_line, w->lines,
                           &w->n_lines))
            return -1;
        if (w->n_lines == 0)
            return cfg_fail(p, e, "%s: a window serves at least one line", what);
        char order[16] = "earliest";
        if (cfg_get_str(p, e, "windows[]", "order", false, order, sizeof order))
            return -1;
        if (strcmp(order, "earliest") == 0)
            w->order = HALL_ORDER_EARLIEST;
        else if (strcmp(order, "lines") == 0)
            w->order = HALL_ORDER_LINES;
        else
            return cfg_fail(p, cfg_get(p, e, "order"),
                            "windows[%s].order: expected earliest or lines", w->id);
    }
    static const char *const tok_keys[] = {"token", "token_hash", "role", "id", NULL};
    if (cfg_parse_list(p, root, "tokens", true, sizeof(hall_token), (void **)&c->tokens,
                       &c->n_tokens, &list))
        return -1;
    for (int i = 0; i < c->n_tokens; i++) {
        yaml_node_t *e = cfg_item(p, list, i);
        hall_token *t = &c->tokens[i];
        char role[16];
        if (cfg_check_keys(p, e, "tokens[]", tok_keys) ||
            cfg_get_str(p, e, "tokens[]", "role", true, role, sizeof role) ||
            cfg_parse_id(p, e, "tokens[]", "id", t->id) || parse_token(p, c, e, i))
            return -1;
        int r = hall_role_from_name(role);
        if (r < 0)
            return cfg_fail(p, cfg_get(p, e, "role"), "tokens[].role: unknown role '%s'", role);
        t->role = (hall_role)r;
        if (t->role == HALL_ROLE_WINDOW && hall_config_window(c, t->id, strlen(t->id)) < 0)
            return cfg_fail(p, cfg_get(p, e, "id"), "tokens[].id: no window '%s'", t->id);
        if (t->role == HALL_ROLE_DEPARTMENT && hall_config_department(c, t->id, strlen(t->id)) < 0)
            return cfg_fail(p, cfg_get(p, e, "id"), "tokens[].id: no department '%s'", t->id);
        if (strlen(t->id) > 16)
            return cfg_fail(p, cfg_get(p, e, "id"), "tokens[].id: longer than 16 characters");
    }
    return 0;
}

static int hex_decode(const char *s, size_t n, uint8_t *out)
{
    size_t bin_len;
    return sodium_hex2bin(out, n / 2, s, n, NULL, &bin_len, NULL) == 0 && bin_len == n / 2 ? 0 : -1;
}

/* tokens[i]: `token: X` or `token_hash: "b2:SALT:HASH"` (hex, 16 and 32
 * bytes); every entry in the same form, every hash with the same salt. */
static int parse_token(parser *p, hall_config *c, yaml_node_t *e, int i)
{
    hall_token *t = &c->tokens[i];
    yaml_node_t *raw = cfg_get(p, e, "token"), *hashed = cfg_get(p, e, "token_hash");
    if (!raw == !hashed)
        return cfg_fail(p, e, "tokens[]: give either token or token_hash");
    if (i > 0 && (hashed != NULL) != c->tokens_hashed)
        return cfg_fail(p, e, "tokens[]: every entry gives token, or every one token_hash");
    c->tokens_hashed = hashed != NULL;
    if (raw) {
        if (cfg_get_str(p, e, "tokens[]", "token", true, t->token, sizeof t->token))
            return -1;
        if (strlen(t->token) < 8)
            return cfg_fail(p, e, "tokens[]: token for '%s' is shorter than 8 characters", t->id);
        for (int j = 0; j < i; j++)
            if (strcmp(c->tokens[j].token, t->token) == 0)
                return cfg_fail(p, e, "tokens[]: the same token is given twice");
        return 0;
    }
    char v[4 + 2 * HALL_TOKEN_SALT_LEN + 2 * HALL_TOKEN_HASH_LEN + 2];
    uint8_t salt[HALL_TOKEN_SALT_LEN];
    if (cfg_get_str(p, e, "tokens[]", "token_hash", true, v, sizeof v))
        return -1;
    const char *s = v + 3, *h = s + 2 * HALL_TOKEN_SALT_LEN + 1;
    if (strlen(v) != sizeof v - 2 || memcmp(v, "b2:", 3) != 0 || h[-1] != ':' ||
        hex_decode(s, 2 * HALL_TOKEN_SALT_LEN, salt) ||
        hex_decode(h, 2 * HALL_TOKEN_HASH_LEN, t->hash))
        return cfg_fail(p, hashed,
                        "tokens[].token_hash: expected \"b2:SALT:HASH\" (%d and %d hex "
                        "bytes)",
                        HALL_TOKEN_SALT_LEN, HALL_TOKEN_HASH_LEN);
    if (i == 0)
        memcpy(c->token_salt, salt, sizeof salt);
    else if (memcmp(c->token_salt, salt, sizeof salt) != 0)
        return cfg_fail(p, hashed, "tokens[].token_hash: every hash must have the same salt");
    for (int j = 0; j < i; j++)
        if (memcmp(c->tokens[j].hash, t->hash, sizeof t->hash) == 0)
            return cfg_fail(p, e, "tokens[]: the same token is given twice");
    return 0;
}
