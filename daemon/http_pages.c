/* daemon/http_pages.c: the pages the HTTP face serves as they are (GET),
 * path -> bytes and content type (http.h, http_pages[]). For now a
 * placeholder at "/"; the hall's screens (web/: /board, /window, /kiosk,
 * /dashboard, their scripts and styles) are to be embedded here at build
 * time. A page may use no inline script or style: every response carries
 * Content-Security-Policy: default-src 'self'. */
#include "daemon/http.h"

static const char placeholder[] =
    "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>hallq</title></head>"
    "<body><h1>hallq</h1><p>This hall's screens will be here: /board, /window, /kiosk, "
    "/dashboard.</p></body></html>\n";

const http_page http_pages[] = {
    {"/", "text/html; charset=utf-8", (const uint8_t *)placeholder, sizeof placeholder - 1},
    {NULL, NULL, NULL, 0},
};
