/* daemon/http_json.c: the HTTP face's JSON <-> MessagePack (jansson). */
#include "daemon/http_internal.h"

#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 64 /* deeper JSON is refused before it is packed */

/* Packs a JSON value as MessagePack: integers stay integers. 0, or -1
 * with a message in err. */
int pack_json(msgpack_packer *pk, json_t *j, int depth, char *err, size_t errlen)
{
    if (depth > JSON_DEPTH_MAX) {
        snprintf(err, errlen, "body: nested deeper than %d", JSON_DEPTH_MAX);
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach(j, k, v)
        {
            proto_pack_str(pk, k);
            if (pack_json(pk, v, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v)
        {
            if (pack_json(pk, v, depth + 1, err, errlen) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_STRING:
        proto_pack_strn(pk, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        if (v >= 0)
            msgpack_pack_uint64(pk, (uint64_t)v);
        else
            msgpack_pack_int64(pk, (int64_t)v);
        return 0;
    }
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(j));
        return 0;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    snprintf(err, errlen, "body: a value JSON cannot hold");
    return -1;
}

/* A MessagePack value as JSON, or NULL (out of memory, a string that is
 * not UTF-8, a map key that is not a string, an extension). */
json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *v = kv->key.type == MSGPACK_OBJECT_STR ? to_json(&kv->val) : NULL;
            if (!v || json_object_setn_new(m, kv->key.via.str.ptr, kv->key.via.str.size, v) != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        return NULL;
    }
}
