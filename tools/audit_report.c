/* tools/audit_report.c: (being written) */
#include "tools/audit.h"

int audit_report(int ac, char **av)
{
    (void)ac;
    (void)av;
    fputs("hallq: not available yet\n", stderr);
    return 1;
}
