/* daemon/http.h: the HTTP face (docs/PROTOCOL.md "The HTTP face"): the
 * third listener, on the server's loop, served by H2O. Everything that
 * knows H2O is in http*.c; the rest of the daemon sees these functions. */
#ifndef HALLQ_HTTP_H
#define HALLQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct server;
struct conn;

/* A page the listener serves as it is (GET): the pages' table is
 * http_pages[], ended by an entry whose path is NULL (web pages are
 * embedded there at build time). */
typedef struct http_page {
    const char *path;         /* "/board" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const uint8_t *body;
    size_t len;
} http_page;
extern const http_page http_pages[];

/* Sets up H2O on the server's loop (before its listener opens: server.c
 * binds s->http with http_accept as its callback). 0, or -1. */
int http_init(struct server *s);
void http_accept(uv_stream_t *ls, int status);
/* HTTP connections open (for metrics). */
uint32_t http_open_connections(const struct server *s);
/* Stopping: the listener closes, idle connections end, streams end with
 * their conns (server_maybe_finish_stop). */
void http_stop(struct server *s);
/* Stopping: whether HTTP connections are still open (the stop waits for
 * them until http_abandon: the drain timed out, they are left as they are). */
bool http_draining(const struct server *s);
void http_abandon(struct server *s);
/* After the loop stopped, before its handles are closed: H2O's context
 * goes (its timers' handles with it), unless connections were abandoned. */
void http_dispose(struct server *s);
/* After the loop ended: frees what the HTTP face holds. */
void http_free(struct server *s);

/* conn.c's hooks for an HTTP request's conn (c->http): its answer frames
 * are in its collecting buffer; and it is closing (its response, if still
 * owed, ends). */
void http_conn_flush(struct conn *c);
void http_conn_closed(struct conn *c);

#endif
