/* daemon/hall/config_sections.c: defaults; the hall, calendar, rules, ..., pii, log sections. */
#include "daemon/hall/config_internal.h"
#include "daemon/hall/calendar.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cfg_set_defaults(hall_config *c)
{
    strcpy(c->time_zone, "UTC");
    c->cal.open_min = 9 * 60;
    c->cal.close_min = 17 * 60;
    c->cal.working_weekdays = 0x3e; /* Monday to Friday */
    c->rules.claim_lease_ms = 300000;
    c->rules.no_show_grace_ms = 1800000;
    c->rules.return_behind = 3;
    c->rules.appointment_window_ms = 900000;
    c->rules.day_close_min = 17 * 60;
    c->rules.default_service_ms = 300000;
    c->limits.max_frame = 65536;
    c->limits.max_inflight = 128;
    c->limits.max_connections = 10000;
    c->limits.output_cap = 1 << 20;
    c->limits.hello_timeout_ms = 10000;
    c->limits.frame_timeout_ms = 10000;
    c->limits.kiosk_rate = 0;
    c->limits.kiosk_burst = 40;
    strcpy(c->tcp.addr, "127.0.0.1:7420");
    c->tcp.roles = HALL_ROLE_BIT(HALL_ROLE_KIOSK) | HALL_ROLE_BIT(HALL_ROLE_WINDOW) |
                   HALL_ROLE_BIT(HALL_ROLE_DISPLAY);
    c->unix_.roles = HALL_ROLE_BIT(HALL_ROLE_DEPARTMENT) | HALL_ROLE_BIT(HALL_ROLE_ADMIN);
    strcpy(c->http.addr, "127.0.0.1:7480");
    c->http.roles = c->tcp.roles;
    c->wal.segment_bytes = 64ull << 20;
    c->wal.disk_reserve_bytes = 256ull << 20;
    c->wal.commit_hold_us = -1; /* auto */
    c->wal.fsync = true;
    c->state.map_bytes = 64ull << 20;
}

int cfg_parse_hall(parser *p, hall_config *c, yaml_node_t *h)
{
    static const char *const keys[] = {"id", "name", "time_zone", "utc_offset", "start_ms", NULL};
    if (!h)
        return cfg_fail(p, NULL, "'hall' is required");
    if (cfg_check_keys(p, h, "hall", keys) || cfg_parse_id(p, h, "hall", "id", c->hall_id) ||
        cfg_get_str(p, h, "hall", "name", true, c->name, sizeof c->name) ||
        cfg_get_str(p, h, "hall", "time_zone", false, c->time_zone, sizeof c->time_zone))
        return -1;
    yaml_node_t *off = cfg_get(p, h, "utc_offset");
    if (off) {
        const char *s = cfg_scalar(off);
        int hh, mm;
        char sign, tail;
        if (!s || strlen(s) != 6 || !cfg_two_digits_colon(s, 1) || !isdigit((unsigned char)s[4]) ||
            !isdigit((unsigned char)s[5]) ||
            sscanf(s, "%c%2d:%2d%c", &sign, &hh, &mm, &tail) != 3 || (sign != '+' && sign != '-') ||
            hh > 14 || mm > 59)
            return cfg_fail(p, off, "hall.utc_offset: expected +HH:MM or -HH:MM, got '%s'",
                            s ? s : "?");
        c->cal.utc_offset_ms = (sign == '-' ? -1 : 1) * ((int64_t)hh * 60 + mm) * 60000;
    }
    yaml_node_t *st = cfg_get(p, h, "start_ms");
    if (st) {
        if (cfg_parse_int(p, st, "hall.start_ms", 0, INT64_MAX / 2, &c->start_ms))
            return -1;
        c->has_start_ms = true;
    }
    return 0;
}

int cfg_parse_calendar(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {
        "open", "close", "working_days", "holidays", "extra_working_days", NULL};
    static const char *const wd[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    if (!n)
        return 0;
    if (cfg_check_keys(p, n, "calendar", keys))
        return -1;
    yaml_node_t *o = cfg_get(p, n, "open"), *cl = cfg_get(p, n, "close");
    if ((o && cfg_parse_hhmm(p, o, "calendar.open", &c->cal.open_min)) ||
        (cl && cfg_parse_hhmm(p, cl, "calendar.close", &c->cal.close_min)))
        return -1;
    if (c->cal.close_min <= c->cal.open_min)
        return cfg_fail(p, cl ? cl : n, "calendar.close: must be later than calendar.open");
    yaml_node_t *w = cfg_get(p, n, "working_days");
    if (w) {
        if (w->type != YAML_SEQUENCE_NODE)
            return cfg_fail(p, w, "calendar.working_days: expected a list like [mon, tue]");
        c->cal.working_weekdays = 0;
        for (yaml_node_item_t *it = w->data.sequence.items.start; it < w->data.sequence.items.top;
             it++) {
            yaml_node_t *e = cfg_node(p, *it);
            const char *s = cfg_scalar(e);
            int found = -1;
            for (int i = 0; s && i < 7; i++)
                if (strcmp(s, wd[i]) == 0)
                    found = i;
            if (found < 0)
                return cfg_fail(p, e, "calendar.working_days: '%s' is not one of sun..sat",
                                s ? s : "?");
            c->cal.working_weekdays |= (uint8_t)(1u << found);
        }
    }
    return cfg_parse_dates(p, cfg_get(p, n, "holidays"), "calendar.holidays", &c->cal.holidays,
                           &c->cal.n_holidays) ||
           cfg_parse_dates(p, cfg_get(p, n, "extra_working_days"), "calendar.extra_working_days",
                           &c->cal.extra_days, &c->cal.n_extra_days);
}

int cfg_parse_rules(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"claim_lease_s",
                                       "no_show_grace_s",
                                       "return_behind",
                                       "appointment_window_s",
                                       "day_close",
                                       "default_service_s",
                                       NULL};
    if (!n)
        return 0;
    int64_t lease = c->rules.claim_lease_ms / 1000, grace = c->rules.no_show_grace_ms / 1000,
            behind = c->rules.return_behind, appt = c->rules.appointment_window_ms / 1000,
            svc = c->rules.default_service_ms / 1000;
    if (cfg_check_keys(p, n, "rules", keys) ||
        cfg_get_int(p, n, "rules", "claim_lease_s", 1, 86400, &lease) ||
        cfg_get_int(p, n, "rules", "no_show_grace_s", 0, 86400, &grace) ||
        cfg_get_int(p, n, "rules", "return_behind", 0, 1000, &behind) ||
        cfg_get_int(p, n, "rules", "appointment_window_s", 0, 86400, &appt) ||
        cfg_get_int(p, n, "rules", "default_service_s", 1, 86400, &svc))
        return -1;
    yaml_node_t *dc = cfg_get(p, n, "day_close");
    if (dc && cfg_parse_hhmm(p, dc, "rules.day_close", &c->rules.day_close_min))
        return -1;
    c->rules.claim_lease_ms = lease * 1000;
    c->rules.no_show_grace_ms = grace * 1000;
    c->rules.return_behind = (int)behind;
    c->rules.appointment_window_ms = appt * 1000;
    c->rules.default_service_ms = svc * 1000;
    return 0;
}

int cfg_parse_limits(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"max_frame",        "max_inflight",    "max_connections",
                                       "output_cap",       "hello_timeout_s", "frame_timeout_s",
                                       "kiosk_rate_per_s", "kiosk_burst",     NULL};
    if (!n)
        return 0;
    int64_t mf = c->limits.max_frame, mi = c->limits.max_inflight, mc = c->limits.max_connections,
            oc = (int64_t)c->limits.output_cap, ht = c->limits.hello_timeout_ms / 1000,
            ft = c->limits.frame_timeout_ms / 1000, kr = c->limits.kiosk_rate,
            kb = c->limits.kiosk_burst;
    if (cfg_check_keys(p, n, "limits", keys) ||
        cfg_get_int(p, n, "limits", "max_frame", 256, 16 << 20, &mf) ||
        cfg_get_int(p, n, "limits", "max_inflight", 1, 65536, &mi) ||
        cfg_get_int(p, n, "limits", "max_connections", 1, 1000000, &mc) ||
        cfg_get_int(p, n, "limits", "output_cap", 4096, (int64_t)1 << 32, &oc) ||
        cfg_get_int(p, n, "limits", "hello_timeout_s", 1, 3600, &ht) ||
        cfg_get_int(p, n, "limits", "frame_timeout_s", 1, 3600, &ft) ||
        cfg_get_int(p, n, "limits", "kiosk_rate_per_s", 0, 1000000, &kr) ||
        cfg_get_int(p, n, "limits", "kiosk_burst", 1, 1000000, &kb))
        return -1;
    c->limits.hello_timeout_ms = (uint32_t)ht * 1000;
    c->limits.frame_timeout_ms = (uint32_t)ft * 1000;
    c->limits.kiosk_rate = (uint32_t)kr;
    c->limits.kiosk_burst = (uint32_t)kb;
    c->limits.max_frame = (uint32_t)mf;
    c->limits.max_inflight = (uint32_t)mi;
    c->limits.max_connections = (uint32_t)mc;
    c->limits.output_cap = (uint64_t)oc;
    return 0;
}

int cfg_parse_listener(parser *p, yaml_node_t *n, const char *what, const char *addr_key,
                       hall_listener *l)
{
    const char *const keys[] = {addr_key, "roles", NULL};
    if (!n)
        return 0;
    return cfg_check_keys(p, n, what, keys) ||
           cfg_get_str(p, n, what, addr_key, false, l->addr, sizeof l->addr) ||
           cfg_parse_roles(p, cfg_get(p, n, "roles"), what, &l->roles);
}

int cfg_parse_wal(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"segment_bytes", "disk_reserve_bytes", "fsync",
                                       "commit_hold_us", NULL};
    if (!n)
        return 0;
    int64_t seg = (int64_t)c->wal.segment_bytes, res = (int64_t)c->wal.disk_reserve_bytes;
    int64_t hold = c->wal.commit_hold_us;
    if (cfg_check_keys(p, n, "wal", keys) ||
        cfg_get_int(p, n, "wal", "segment_bytes", 65536, (int64_t)1 << 34, &seg) ||
        cfg_get_int(p, n, "wal", "disk_reserve_bytes", 0, (int64_t)1 << 40, &res))
        return -1;
    yaml_node_t *h = cfg_get(p, n, "commit_hold_us");
    const char *hs = h ? cfg_scalar(h) : NULL;
    if (h && !(hs && strcmp(hs, "auto") == 0) &&
        cfg_get_int(p, n, "wal", "commit_hold_us", 0, 10000000, &hold))
        return -1;
    c->wal.commit_hold_us = hold;
    yaml_node_t *f = cfg_get(p, n, "fsync");
    if (f) {
        const char *s = cfg_scalar(f);
        if (s && strcmp(s, "always") == 0)
            c->wal.fsync = true;
        else if (s && strcmp(s, "none") == 0)
            c->wal.fsync = false;
        else
            return cfg_fail(p, f, "wal.fsync: expected 'always' or 'none'");
    }
    c->wal.segment_bytes = (uint64_t)seg;
    c->wal.disk_reserve_bytes = (uint64_t)res;
    return 0;
}

int cfg_parse_state(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"map_bytes", NULL};
    if (!n)
        return 0;
    int64_t mb = (int64_t)c->state.map_bytes;
    if (cfg_check_keys(p, n, "state", keys) ||
        cfg_get_int(p, n, "state", "map_bytes", 1 << 20, (int64_t)1 << 40, &mb))
        return -1;
    c->state.map_bytes = (uint64_t)mb & ~(uint64_t)4095;
    return 0;
}

int cfg_parse_log(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"level", NULL};
    static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
    if (!n)
        return 0;
    if (cfg_check_keys(p, n, "log", keys) ||
        cfg_get_str(p, n, "log", "level", false, c->log_level, sizeof c->log_level))
        return -1;
    if (!c->log_level[0])
        return 0;
    for (int i = 0; levels[i]; i++)
        if (strcmp(c->log_level, levels[i]) == 0)
            return 0;
    return cfg_fail(p, cfg_get(p, n, "level"), "log.level: expected error, warn, info or debug");
}

int cfg_parse_pii(parser *p, hall_config *c, yaml_node_t *n)
{
    static const char *const keys[] = {"names", NULL};
    char v[16] = "mask";
    if (!n)
        return 0;
    if (cfg_check_keys(p, n, "pii", keys) || cfg_get_str(p, n, "pii", "names", false, v, sizeof v))
        return -1;
    if (strcmp(v, "mask") == 0)
        c->pii.keep_names = false;
    else if (strcmp(v, "keep") == 0)
        c->pii.keep_names = true;
    else
        return cfg_fail(p, cfg_get(p, n, "names"), "pii.names: expected mask or keep");
    return 0;
}
