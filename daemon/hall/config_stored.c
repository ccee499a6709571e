/* daemon/hall/config_stored.c: the stored form of a config, the one the
 * WAL and the state hold: tokens only as salted hashes.
 *
 * The text is rewritten through libyaml's document API (load, replace the
 * `token` pairs of `tokens[]`, emit), never by string surgery, so quoting,
 * flow or block style and odd spellings of the key cannot let a token
 * through. The emitter's output is deterministic for a given document, so
 * the same file and salt give the same stored text and the same `sha`: an
 * unchanged file is recognised as unchanged.
 *
 * Never: put a raw token, or an unsalted hash of one, into the text this
 * returns. */
#include "daemon/hall/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* The demo hall's tokens (examples/demo-hall.yaml): public, so a config
 * giving any of them is a copy of the demo. */
static const char *const demo_tokens[] = {
    "kiosk-demo", "display-demo", "window-W01", "window-W02", "window-W03",
    "window-W04", "window-W05",   "window-W06", "dept-mkt",   "dept-hrss",
    "dept-pol",   "dept-res",     "dept-hsg",   "admin-demo",
};

bool hall_config_is_demo(const hall_config *c)
{
    for (size_t i = 0; i < sizeof demo_tokens / sizeof *demo_tokens; i++)
        if (hall_config_token(c, demo_tokens[i], strlen(demo_tokens[i])))
            return true;
    return false;
}

void hall_config_salt(const hall_config *cur, const hall_config *c, const uint8_t *key,
                      size_t keylen, uint8_t salt[HALL_TOKEN_SALT_LEN])
{
    static const unsigned char fixed[16] = "hallq token salt";
    if (cur && cur->tokens_hashed) {
        memcpy(salt, cur->token_salt, HALL_TOKEN_SALT_LEN);
        return;
    }
    if (!key) {
        key = fixed;
        keylen = sizeof fixed;
    }
    crypto_generichash(salt, HALL_TOKEN_SALT_LEN, (const unsigned char *)c->hall_id,
                       strlen(c->hall_id), key, keylen);
}

typedef struct outbuf {
    char *p;
    size_t len, cap;
    bool oom;
} outbuf;

static int write_out(void *data, unsigned char *buf, size_t size)
{
    outbuf *o = data;
    if (o->len + size + 1 > o->cap) {
        size_t cap = (o->len + size + 1) * 2;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->oom = true;
            return 0;
        }
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, buf, size);
    o->len += size;
    return 1;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key,
                            yaml_node_t **knode)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(d, pr->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0) {
            if (knode)
                *knode = k;
            return yaml_document_get_node(d, pr->value);
        }
    }
    return NULL;
}

/* Replaces a scalar node's value (libyaml frees it with free()). */
static int set_scalar(yaml_node_t *n, const char *v, yaml_scalar_style_t style)
{
    size_t len = strlen(v);
    unsigned char *nv = malloc(len + 1);
    if (!nv)
        return -1;
    memcpy(nv, v, len + 1);
    sodium_memzero(n->data.scalar.value, n->data.scalar.length);
    free(n->data.scalar.value);
    n->data.scalar.value = nv;
    n->data.scalar.length = len;
    n->data.scalar.style = style;
    return 0;
}

int hall_config_stored(const hall_config *c, const uint8_t salt[HALL_TOKEN_SALT_LEN],
                       hall_config **out, char *err, size_t errlen)
{
    if (c->tokens_hashed || c->n_tokens == 0)
        return hall_config_parse(c->text, c->text_len, "stored config", out, err, errlen);
    yaml_parser_t yp;
    yaml_document_t doc;
    yaml_emitter_t em;
    outbuf o = {0};
    int ret = -1;
    if (!yaml_parser_initialize(&yp)) {
        snprintf(err, errlen, "stored config: out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&yp, (const unsigned char *)c->text, c->text_len);
    int loaded = yaml_parser_load(&yp, &doc);
    yaml_parser_delete(&yp);
    if (!loaded) { /* c was parsed from this very text */
        snprintf(err, errlen, "stored config: the text no longer parses");
        return -1;
    }
    char salt_hex[2 * HALL_TOKEN_SALT_LEN + 1];
    sodium_bin2hex(salt_hex, sizeof salt_hex, salt, HALL_TOKEN_SALT_LEN);
    yaml_node_t *list = map_get(&doc, yaml_document_get_root_node(&doc), "tokens", NULL);
    int replaced = 0;
    for (yaml_node_item_t *it =
             list && list->type == YAML_SEQUENCE_NODE ? list->data.sequence.items.start : NULL;
         it && it < list->data.sequence.items.top; it++) {
        yaml_node_t *k, *v = map_get(&doc, yaml_document_get_node(&doc, *it), "token", &k);
        if (!v || v->type != YAML_SCALAR_NODE)
            continue;
        uint8_t h[HALL_TOKEN_HASH_LEN];
        char hex[2 * HALL_TOKEN_HASH_LEN + 1], val[sizeof salt_hex + sizeof hex + 4];
        crypto_generichash(h, sizeof h, v->data.scalar.value, v->data.scalar.length, salt,
                           HALL_TOKEN_SALT_LEN);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        snprintf(val, sizeof val, "b2:%s:%s", salt_hex, hex);
        if (set_scalar(k, "token_hash", YAML_PLAIN_SCALAR_STYLE) ||
            set_scalar(v, val, YAML_DOUBLE_QUOTED_SCALAR_STYLE)) {
            yaml_document_delete(&doc);
            snprintf(err, errlen, "stored config: out of memory");
            return -1;
        }
        replaced++;
    }
    if (replaced != c->n_tokens) {
        yaml_document_delete(&doc);
        snprintf(err, errlen, "stored config: found %d of %d tokens", replaced, c->n_tokens);
        return -1;
    }
    if (!yaml_emitter_initialize(&em)) {
        yaml_document_delete(&doc);
        snprintf(err, errlen, "stored config: out of memory");
        return -1;
    }
    yaml_emitter_set_output(&em, write_out, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    if (!yaml_emitter_open(&em)) {
        yaml_document_delete(&doc);
        snprintf(err, errlen, "stored config: out of memory");
        goto out;
    }
    /* yaml_emitter_dump takes the document and deletes it, even on error. */
    if (!yaml_emitter_dump(&em, &doc) || !yaml_emitter_close(&em) || !yaml_emitter_flush(&em) ||
        o.oom) {
        snprintf(err, errlen, "stored config: emitting: %s",
                 em.problem ? em.problem : "out of memory");
        goto out;
    }
    ret = hall_config_parse(o.p, o.len, "stored config", out, err, errlen);
out:
    yaml_emitter_delete(&em);
    free(o.p);
    return ret;
}
