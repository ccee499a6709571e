/* daemon/hall/config_internal.h: what config*.c share; nothing outside them may use it. */
#ifndef HALLQ_HALL_CONFIG_INTERNAL_H
#define HALLQ_HALL_CONFIG_INTERNAL_H

#include "daemon/hall/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

typedef struct parser {
    yaml_document_t doc;
    const char *origin;
    char *err;
    size_t errlen;
    int failed;
} parser;

/* Resolves a list of ids to indexes via `lookup`. */
typedef int (*lookup_fn)(const hall_config *c, const char *id, size_t n);

/* config_yaml.c */
__attribute__((format(printf, 3, 4))) int cfg_fail(parser *p, const yaml_node_t *n, const char *fmt,
                                                   ...);
yaml_node_t *cfg_node(parser *p, int idx);
const char *cfg_scalar(const yaml_node_t *n);
int cfg_check_keys(parser *p, yaml_node_t *map, const char *what, const char *const *allowed);
yaml_node_t *cfg_get(parser *p, yaml_node_t *map, const char *key);
int cfg_get_str(parser *p, yaml_node_t *map, const char *what, const char *key, bool required,
                char *out, size_t cap);
int cfg_parse_int(parser *p, yaml_node_t *n, const char *what, int64_t lo, int64_t hi,
                  int64_t *out);
int cfg_get_int(parser *p, yaml_node_t *map, const char *what, const char *key, int64_t lo,
                int64_t hi, int64_t *out);
bool cfg_two_digits_colon(const char *s, size_t at);
int cfg_parse_hhmm(parser *p, yaml_node_t *n, const char *what, int *out);
int cfg_parse_date(const char *s, size_t n, int32_t *day);
int cfg_parse_dates(parser *p, yaml_node_t *n, const char *what, int32_t **out, int *count);
int cfg_parse_id(parser *p, yaml_node_t *map, const char *what, const char *key, char *out);
int cfg_parse_refs(parser *p, const hall_config *c, yaml_node_t *n, const char *what,
                   const char *kind, lookup_fn lookup, int *out, int *count);
int cfg_parse_list(parser *p, yaml_node_t *root, const char *key, bool required, size_t size,
                   void **items, int *count, yaml_node_t **list);
yaml_node_t *cfg_item(parser *p, yaml_node_t *list, int i);
int cfg_parse_roles(parser *p, yaml_node_t *n, const char *what, uint32_t *mask);

/* config_sections.c */
void cfg_set_defaults(hall_config *c);
int cfg_parse_hall(parser *p, hall_config *c, yaml_node_t *h);
int cfg_parse_calendar(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_rules(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_limits(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_listener(parser *p, yaml_node_t *n, const char *what, const char *addr_key,
                       hall_listener *l);
int cfg_parse_wal(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_state(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_log(parser *p, hall_config *c, yaml_node_t *n);
int cfg_parse_pii(parser *p, hall_config *c, yaml_node_t *n);

/* config_catalogue.c */
int cfg_parse_catalogue(parser *p, hall_config *c, yaml_node_t *root);

#endif
