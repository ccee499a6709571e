/* tests/fuzz/fuzz_config.c: the config loader (daemon/hall/config*.c) under
 * arbitrary text.
 *
 * hall_config_parse must either fail with "fuzz:LINE: what" in err (and
 * leave *out untouched) or return a config whose every index points into
 * its arrays, whose counts are within the documented bounds, whose
 * strings end inside their fields and whose date lists are sorted; then
 * the lookups find each item by its own id, and it is freed. The text is
 * a copy of exactly the input's bytes with no NUL after it, so a read
 * past `len` is a heap overflow ASan reports. */
#include "tests/fuzz/fuzz.h"

#include "daemon/hall/config.h"

#include <string.h>

#define STR_OK(field) FUZZ_CHECK(memchr((field), 0, sizeof(field)) != NULL)

static void check_indexes(const int *v, int n, int bound)
{
    FUZZ_CHECK(n >= 0 && n <= HALL_MAX_LIST);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(v[i] >= 0 && v[i] < bound);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(v[i] != v[j]);
    }
}

static void check_sorted(const int32_t *v, int n)
{
    FUZZ_CHECK(n >= 0 && (n == 0 || v != NULL));
    for (int i = 1; i < n; i++)
        FUZZ_CHECK(v[i - 1] <= v[i]);
}

static void check_config(const hall_config *c, const char *text, size_t len)
{
    STR_OK(c->hall_id);
    STR_OK(c->name);
    STR_OK(c->time_zone);
    STR_OK(c->tcp.addr);
    STR_OK(c->unix_.addr);
    FUZZ_CHECK(c->hall_id[0] != 0);
    FUZZ_CHECK(c->text_len == len && c->text[len] == 0 && memcmp(c->text, text, len) == 0);
    FUZZ_CHECK(c->cal.open_min >= 0 && c->cal.open_min < c->cal.close_min &&
               c->cal.close_min < 24 * 60);
    FUZZ_CHECK(c->rules.day_close_min >= 0 && c->rules.day_close_min < 24 * 60);
    /* An offset is at most 14 hours either way. */
    FUZZ_CHECK(c->cal.utc_offset_ms >= -14 * 3600000LL - 59 * 60000LL &&
               c->cal.utc_offset_ms <= 14 * 3600000LL + 59 * 60000LL);
    FUZZ_CHECK(c->cal.utc_offset_ms % 60000 == 0);
    check_sorted(c->cal.holidays, c->cal.n_holidays);
    check_sorted(c->cal.extra_days, c->cal.n_extra_days);
    FUZZ_CHECK(c->limits.max_frame >= 256 && c->limits.max_inflight >= 1);
    FUZZ_CHECK(c->rules.claim_lease_ms > 0 && c->rules.default_service_ms > 0);
    FUZZ_CHECK((c->tcp.roles & ~0x3eu) == 0 && (c->unix_.roles & ~0x3eu) == 0);

    FUZZ_CHECK(c->n_lines >= 1 && c->n_lines <= HALL_MAX_ITEMS && c->lines);
    FUZZ_CHECK(c->n_departments >= 0 && c->n_departments <= HALL_MAX_ITEMS);
    FUZZ_CHECK(c->n_materials >= 0 && c->n_materials <= HALL_MAX_ITEMS);
    FUZZ_CHECK(c->n_services >= 0 && c->n_services <= HALL_MAX_ITEMS);
    FUZZ_CHECK(c->n_windows >= 0 && c->n_windows <= HALL_MAX_ITEMS);
    FUZZ_CHECK(c->n_tokens >= 1 && c->n_tokens <= HALL_MAX_ITEMS && c->tokens);
    for (int i = 0; i < c->n_lines; i++) {
        STR_OK(c->lines[i].id);
        STR_OK(c->lines[i].name);
        STR_OK(c->lines[i].name_zh);
        FUZZ_CHECK(strlen(c->lines[i].id) >= 1 && strlen(c->lines[i].id) <= 4);
        FUZZ_CHECK(hall_config_line(c, c->lines[i].id, strlen(c->lines[i].id)) == i);
    }
    for (int i = 0; i < c->n_departments; i++) {
        STR_OK(c->departments[i].id);
        STR_OK(c->departments[i].name);
        STR_OK(c->departments[i].name_zh);
        const char *id = c->departments[i].id;
        FUZZ_CHECK(hall_config_department(c, id, strlen(id)) == i);
    }
    for (int i = 0; i < c->n_materials; i++) {
        STR_OK(c->materials[i].code);
        STR_OK(c->materials[i].name);
        const char *id = c->materials[i].code;
        FUZZ_CHECK(hall_config_material(c, id, strlen(id)) == i);
    }
    for (int i = 0; i < c->n_services; i++) {
        const hall_service *s = &c->services[i];
        STR_OK(s->code);
        STR_OK(s->name);
        STR_OK(s->name_zh);
        FUZZ_CHECK(hall_config_service(c, s->code, strlen(s->code)) == i);
        FUZZ_CHECK(s->line >= 0 && s->line < c->n_lines);
        FUZZ_CHECK(s->n_departments >= 1);
        check_indexes(s->departments, s->n_departments, c->n_departments);
        check_indexes(s->checklist, s->n_checklist, c->n_materials);
        FUZZ_CHECK(s->kind == HALL_SERVICE_REVIEW || s->kind == HALL_SERVICE_INSTANT);
        FUZZ_CHECK(s->days >= 0 && (s->kind != HALL_SERVICE_REVIEW || s->days >= 1));
    }
    for (int i = 0; i < c->n_windows; i++) {
        const hall_window *w = &c->windows[i];
        STR_OK(w->id);
        STR_OK(w->kind);
        FUZZ_CHECK(hall_config_window(c, w->id, strlen(w->id)) == i);
        FUZZ_CHECK(w->n_lines >= 1);
        check_indexes(w->lines, w->n_lines, c->n_lines);
    }
    for (int i = 0; i < c->n_tokens; i++) {
        const hall_token *t = &c->tokens[i];
        STR_OK(t->token);
        STR_OK(t->id);
        FUZZ_CHECK(t->role > HALL_ROLE_SYSTEM && t->role < HALL_ROLE__COUNT);
        FUZZ_CHECK(strlen(t->token) >= 8);
        FUZZ_CHECK(hall_config_token(c, t->token, strlen(t->token)) == t);
        if (t->role == HALL_ROLE_WINDOW)
            FUZZ_CHECK(hall_config_window(c, t->id, strlen(t->id)) >= 0);
        if (t->role == HALL_ROLE_DEPARTMENT)
            FUZZ_CHECK(hall_config_department(c, t->id, strlen(t->id)) >= 0);
    }
}

int fuzz_config(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size)
        memcpy(text, data, size);
    hall_config *c = NULL;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = hall_config_parse(text, size, "fuzz", &c, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK(strncmp(err, "fuzz:", 5) == 0);
        FUZZ_CHECK(memchr(err, 0, sizeof err) != NULL);
    } else {
        FUZZ_CHECK(c != NULL);
        check_config(c, text, size);
        hall_config_free(c);
    }
    free(text);
    return 0;
}

#ifdef HALLQ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_config(data, size);
}
#endif
