/* tools/audit_archive.c: (being written) */
#include "tools/audit.h"

int audit_wal_archive(int ac, char **av)
{
    (void)ac;
    (void)av;
    fputs("hallq: not available yet\n", stderr);
    return 1;
}
