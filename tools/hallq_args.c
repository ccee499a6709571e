/* tools/hallq_args.c: a request's arguments, from words to one MessagePack map.
 *
 * Commands collect (key, text, type) triples and pack them at the end, so
 * the map's size is known before it is written. A key "outer.inner" goes
 * into a nested map `outer` (one level), which lets `hallq call` build an
 * applicant. Values are checked by the server, not here: hallq only makes
 * sure each has the wire type the protocol gives it. */
#include "tools/hallq.h"

#include <string.h>

bool hq_all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

bool hq_args_add(hq_args *a, const char *key, const char *val, hq_type t)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->kv[i].key, key)) {
            a->kv[i] = (hq_kv){key, val, t};
            return true;
        }
    if (a->n == HQ_ARGS_MAX) {
        fprintf(stderr, "hallq: too many arguments (at most %d)\n", HQ_ARGS_MAX);
        return false;
    }
    a->kv[a->n++] = (hq_kv){key, val, t};
    return true;
}

/* A comma-separated list of n bytes; empty text is the empty list. */
static void pack_list(msgpack_packer *pk, const char *v, size_t len)
{
    uint32_t n = len ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        n += v[i] == ',';
    msgpack_pack_array(pk, n);
    size_t start = 0;
    for (size_t i = 0; n && i <= len; i++) {
        if (i == len || v[i] == ',') {
            size_t a = start, b = i; /* "M01, M02" as well as "M01,M02" */
            while (a < b && v[a] == ' ')
                a++;
            while (b > a && v[b - 1] == ' ')
                b--;
            proto_pack_strn(pk, v + a, b - a);
            start = i + 1;
        }
    }
}

/* KIND:ID[:NAME]; the name may hold colons. */
static void pack_applicant(msgpack_packer *pk, const char *v)
{
    const char *c1 = strchr(v, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1) { /* the command checked the form; be safe anyway */
        msgpack_pack_map(pk, 1);
        proto_pack_kv_str(pk, "id", v);
        return;
    }
    msgpack_pack_map(pk, c2 ? 3 : 2);
    proto_pack_str(pk, "kind");
    proto_pack_strn(pk, v, (size_t)(c1 - v));
    proto_pack_str(pk, "id");
    proto_pack_strn(pk, c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1));
    if (c2)
        proto_pack_kv_str(pk, "name", c2 + 1);
}

static void pack_value(msgpack_packer *pk, const char *v, hq_type t)
{
    size_t len = strlen(v);
    if (t == HQ_T_AUTO) {
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
            proto_pack_strn(pk, v + 1, len - 2); /* "123": a string after all */
            return;
        }
        if (len >= 2 && v[0] == '[' && v[len - 1] == ']') {
            pack_list(pk, v + 1, len - 2);
            return;
        }
        if (!strcmp(v, "null")) {
            msgpack_pack_nil(pk);
            return;
        }
        t = hq_all_digits(v)                            ? HQ_T_UINT
            : !strcmp(v, "true") || !strcmp(v, "false") ? HQ_T_BOOL
            : strchr(v, ',')                            ? HQ_T_LIST
                                                        : HQ_T_STR;
    }
    switch (t) {
    case HQ_T_UINT:
        msgpack_pack_uint64(pk, strtoull(v, NULL, 10));
        break;
    case HQ_T_BOOL:
        if (!strcmp(v, "true"))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case HQ_T_LIST:
        if (len >= 2 && v[0] == '[' && v[len - 1] == ']')
            pack_list(pk, v + 1, len - 2); /* [M01,M02] as well as M01,M02 */
        else
            pack_list(pk, v, len);
        break;
    case HQ_T_APPLICANT:
        pack_applicant(pk, v);
        break;
    default:
        proto_pack_strn(pk, v, len);
        break;
    }
}

/* Length of the top-level name of a key (up to its first '.'). */
static size_t top_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : strlen(key);
}

static bool same_top(const char *a, const char *b)
{
    size_t n = top_len(a);
    return n == top_len(b) && !strncmp(a, b, n);
}

int hq_args_pack(const hq_args *a, proto_buf *b)
{
    msgpack_packer pk;
    proto_buf_reset(b);
    proto_packer_init(&pk, b);
    /* Count the distinct top-level names, first occurrence first. */
    uint32_t tops = 0;
    for (int i = 0; i < a->n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = same_top(a->kv[i].key, a->kv[j].key);
        tops += !seen;
    }
    msgpack_pack_map(&pk, tops);
    for (int i = 0; i < a->n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = same_top(a->kv[i].key, a->kv[j].key);
        if (seen)
            continue;
        const char *key = a->kv[i].key;
        size_t tl = top_len(key);
        proto_pack_strn(&pk, key, tl);
        if (!key[tl]) {
            pack_value(&pk, a->kv[i].val, a->kv[i].type);
            continue;
        }
        uint32_t inner = 0;
        for (int j = i; j < a->n; j++)
            inner += same_top(key, a->kv[j].key) && a->kv[j].key[tl] == '.';
        msgpack_pack_map(&pk, inner);
        for (int j = i; j < a->n; j++) {
            if (!same_top(key, a->kv[j].key) || a->kv[j].key[tl] != '.')
                continue;
            proto_pack_str(&pk, a->kv[j].key + tl + 1);
            pack_value(&pk, a->kv[j].val, a->kv[j].type);
        }
    }
    if (b->oom) {
        fprintf(stderr, "hallq: out of memory packing the arguments\n");
        return -1;
    }
    return 0;
}
