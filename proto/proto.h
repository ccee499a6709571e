/* proto/proto.h: the hallq wire format, shared by the daemon and the tools.
 *
 * A frame is a 4-byte big-endian length N (1 <= N <= max_frame) and N bytes
 * holding exactly one MessagePack map. Requests are {id, op, args?},
 * responses {id, ok: true, result} or {id, ok: false, error: {code,
 * message}}, pushed events {event, seq, data}. See docs/PROTOCOL.md.
 *
 * Nothing here does I/O except proto/client.h. */
#ifndef HALLQ_PROTO_H
#define HALLQ_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_DEFAULT_MAX_FRAME 65536u
#define PROTO_MAX_DEPTH 16 /* deepest container nesting a body may have */

/* ---- Error codes: one table makes the enum and the wire names. ---- */
#define PROTO_ERR_MAP(X)                                                                           \
    X(BAD_FRAME, "bad_frame")                                                                      \
    X(UNAUTHENTICATED, "unauthenticated")                                                          \
    X(BAD_REQUEST, "bad_request")                                                                  \
    X(UNKNOWN_OP, "unknown_op")                                                                    \
    X(FORBIDDEN, "forbidden")                                                                      \
    X(NOT_FOUND, "not_found")                                                                      \
    X(CONFLICT, "conflict")                                                                        \
    X(CHECKLIST, "checklist")                                                                      \
    X(LIMIT, "limit")                                                                              \
    X(UNAVAILABLE, "unavailable")                                                                  \
    X(INTERNAL, "internal")

typedef enum proto_err {
    PROTO_OK = 0,
#define PROTO_ERR_ENUM(name, str) PROTO_E_##name,
    PROTO_ERR_MAP(PROTO_ERR_ENUM)
#undef PROTO_ERR_ENUM
        PROTO_E__COUNT
} proto_err;

/* Wire name of a code ("bad_frame"...); "ok" for PROTO_OK. */
const char *proto_err_name(proto_err e);
/* The code for a wire name, or -1. */
int proto_err_from_name(const char *s, size_t n);
/* Whether the server closes the connection after this error. */
bool proto_err_closes(proto_err e);
/* The HTTP status an answer with this code gets on the HTTP face
 * (PROTOCOL.md 1.2): 200 for PROTO_OK, 400, 401, 403, 404, 409, 429, 503,
 * and 500 for `internal` (and anything else). */
int proto_err_http_status(proto_err e);

/* An error with its message, as handlers report it. */
typedef struct proto_error {
    proto_err code;
    char msg[200];
} proto_error;

/* Sets e and returns e->code. printf-style message. */
proto_err proto_fail(proto_error *e, proto_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Incremental frame decoder over one bounded buffer. ----
 *
 * The buffer grows on demand (starting small, so idle connections cost
 * little) up to 4 + max_frame bytes and never past that; it holds the
 * unconsumed bytes of at most one frame beyond the complete ones
 * already buffered. */
typedef struct proto_framer {
    uint8_t *buf;
    size_t cap;   /* allocated bytes */
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last received byte */
    uint32_t max_frame;
    bool oom; /* the last proto_framer_space could not grow the buffer */
} proto_framer;

enum {
    PROTO_FRAME_NEED = 0,  /* no complete frame buffered */
    PROTO_FRAME_READY = 1, /* a frame is returned */
    PROTO_FRAME_EZERO = -1,
    PROTO_FRAME_EBIG = -2,
    PROTO_FRAME_ENOMEM = -3,
};

void proto_framer_init(proto_framer *f, uint32_t max_frame);
void proto_framer_free(proto_framer *f);
/* Room for the next read: at least 1 byte while the buffered bytes do not
 * yet hold a complete frame, growing the buffer up to 4 + max_frame and
 * never past it; 0 bytes when a complete frame waits to be consumed.
 * NULL with *len = 0 on allocation failure. */
uint8_t *proto_framer_space(proto_framer *f, size_t *len);
/* n bytes were read into the space returned last. */
void proto_framer_commit(proto_framer *f, size_t n);
/* Copies bytes in (for tests and the client); returns bytes taken. */
size_t proto_framer_feed(proto_framer *f, const uint8_t *p, size_t n);
/* The next complete frame: PROTO_FRAME_READY with its body, PROTO_FRAME_NEED,
 * or an error (length 0 or > max_frame, detected as soon as the 4 length
 * bytes are in; PROTO_FRAME_ENOMEM instead of NEED when the last
 * proto_framer_space failed to allocate). A bad length stays reported:
 * the connection is done. The body stays valid until the next
 * proto_framer_space or proto_framer_feed call. */
int proto_framer_next(proto_framer *f, const uint8_t **body, uint32_t *len);
/* Bytes buffered and not yet returned as frames. */
size_t proto_framer_buffered(const proto_framer *f);
/* Releases the buffer when it holds nothing (idle connections). */
void proto_framer_shrink(proto_framer *f);

/* ---- Bodies and envelopes. ---- */

/* Checks, without allocating, that [p, p+n) is exactly one MessagePack
 * map, with no container deeper than PROTO_MAX_DEPTH, no declared length
 * beyond the bytes there, string keys in every map, and no byte after
 * it. Returns PROTO_OK or PROTO_E_BAD_FRAME with a message in e. */
proto_err proto_body_check(const uint8_t *p, size_t n, proto_error *e);

typedef struct proto_request {
    uint64_t id;
    const char *op;
    uint32_t op_len;
    const msgpack_object *args; /* a map, or NULL when absent */
} proto_request;

/* Checks the body (proto_body_check), unpacks it into zone `z` and reads
 * the envelope. Errors: PROTO_E_BAD_FRAME (not one map...), PROTO_E_BAD_REQUEST
 * naming the field (id not a uint, op not a string, args not a map); on
 * BAD_REQUEST req->id is the id if it could be read, else 0. Nothing is
 * copied: req->op and the strings under req->args point into `body`, the
 * objects into z, so the request is valid while both are (for a framer's
 * body: until the next proto_framer_space or proto_framer_feed). */
proto_err proto_request_decode(msgpack_zone *z, const uint8_t *body, size_t n, proto_request *req,
                               proto_error *e);

/* Whether op equals the C string s. */
bool proto_op_is(const proto_request *r, const char *s);

/* ---- Reading args. Each returns PROTO_OK, or PROTO_E_BAD_REQUEST naming
 * the field ("args.line: missing", "args.priority: expected bool"). An
 * absent optional field leaves *present false (or *s NULL). ---- */
const msgpack_object *proto_map_get(const msgpack_object *map, const char *key);
proto_err proto_arg_str(const msgpack_object *args, const char *key, bool required, const char **s,
                        uint32_t *len, proto_error *e);
proto_err proto_arg_uint(const msgpack_object *args, const char *key, bool required, uint64_t *v,
                         bool *present, proto_error *e);
proto_err proto_arg_bool(const msgpack_object *args, const char *key, bool required, bool *v,
                         bool *present, proto_error *e);
/* A map or an array: *o points at the object, NULL when absent. */
proto_err proto_arg_map(const msgpack_object *args, const char *key, bool required,
                        const msgpack_object **o, proto_error *e);
proto_err proto_arg_array(const msgpack_object *args, const char *key, bool required,
                          const msgpack_object **o, proto_error *e);

/* ---- Output: a growable byte buffer that msgpack_packer writes into. ---- */
typedef struct proto_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool oom; /* an allocation failed; contents are unusable */
} proto_buf;

void proto_buf_init(proto_buf *b);
void proto_buf_free(proto_buf *b);
void proto_buf_reset(proto_buf *b); /* len = 0, keeps memory */
bool proto_buf_reserve(proto_buf *b, size_t extra);
bool proto_buf_append(proto_buf *b, const void *p, size_t n);
/* msgpack_packer write callback; data is a proto_buf *. */
int proto_buf_write(void *data, const char *buf, size_t len);
/* Starts a packer writing into b. */
void proto_packer_init(msgpack_packer *pk, proto_buf *b);

/* Reserves the 4 length bytes of a frame; returns the offset to pass to
 * proto_frame_end, which patches in the length of what was packed since. */
size_t proto_frame_begin(proto_buf *b);
void proto_frame_end(proto_buf *b, size_t off);

void proto_pack_str(msgpack_packer *pk, const char *s);
void proto_pack_strn(msgpack_packer *pk, const char *s, size_t n);
/* Packs "key" then a string / uint / bool value. */
void proto_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void proto_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val);
void proto_pack_kv_bool(msgpack_packer *pk, const char *key, bool val);

/* A whole error response frame appended to b. */
void proto_write_error(proto_buf *b, uint64_t id, proto_err code, const char *msg);
/* Starts an ok response frame: packs the map header {id, ok, result:} so
 * the caller packs exactly one value (the result map) next, then calls
 * proto_frame_end(b, off). Returns off. */
size_t proto_begin_ok(proto_buf *b, msgpack_packer *pk, uint64_t id);
/* A whole request frame: {id, op, args} where args_map is an already
 * packed map (or NULL for none). */
void proto_write_request(proto_buf *b, uint64_t id, const char *op, const uint8_t *args_map,
                         size_t args_len);

#endif
