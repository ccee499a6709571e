/* daemon/http_pages.c: the pages the HTTP face serves as they are (GET),
 * path -> bytes and content type (http.h, http_pages[]): the hall's
 * screens, the files of web/ (/board, /window, /kiosk, /dashboard, their
 * script and style), embedded at build time. tools/embed_web.cmake writes
 * the table into the build directory as web_pages.inc (daemon/CMakeLists.txt
 * runs it again whenever a file of web/ changes). A page may use no inline
 * script or style: every response carries Content-Security-Policy:
 * default-src 'self'. */
#include "daemon/http.h"

#include "web_pages.inc"
