/* proto/client.h: a small blocking client of the hallq protocol, used by
 * the hallq CLI, the benchmark and the C tests.
 *
 * Not thread-safe; one connection per proto_client. Every call returns
 * PROTO_OK or an error code with a message in c->err. */
#ifndef HALLQ_PROTO_CLIENT_H
#define HALLQ_PROTO_CLIENT_H

#include "proto/proto.h"

typedef struct proto_client {
    int fd;
    uint64_t next_id;
    int timeout_ms; /* per call; 0 = wait forever */
    proto_framer in;
    proto_buf out;
    msgpack_unpacked resp; /* the last response, valid until the next call */
    proto_error err;
} proto_client;

/* Connects to `addr`: "HOST:PORT" (TCP) or a path containing '/' (Unix
 * socket), or explicitly "tcp:HOST:PORT" / "unix:PATH". */
proto_err proto_client_connect(proto_client *c, const char *addr);
void proto_client_close(proto_client *c);

/* Sends one request (args_map: a packed map or NULL) and waits for its
 * response. On ok, *result points at the result map. On an error response
 * the server's code is returned and c->err holds its code and message.
 * Transport failures return PROTO_E_UNAVAILABLE with a message. */
proto_err proto_client_call(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, const msgpack_object **result);

/* hello {token, client}. */
proto_err proto_client_hello(proto_client *c, const char *token, const char *client_name,
                             const msgpack_object **result);

/* Low level, for pipelining: send a request without waiting; read the
 * next frame (response or event) into c->resp. */
proto_err proto_client_send(proto_client *c, const char *op, const uint8_t *args_map,
                            size_t args_len, uint64_t *id);
proto_err proto_client_recv(proto_client *c, const msgpack_object **msg);

#endif
