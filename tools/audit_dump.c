/* tools/audit_dump.c: (being written) */
#include "tools/audit.h"

int audit_wal_dump(int ac, char **av)
{
    (void)ac;
    (void)av;
    fputs("hallq: not available yet\n", stderr);
    return 1;
}

int audit_wal_history(int ac, char **av)
{
    (void)ac;
    (void)av;
    fputs("hallq: not available yet\n", stderr);
    return 1;
}
