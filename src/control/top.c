#include "control/top.h"
#include <errno.h>
int mars_top_run(const char *address)
{
    (void)address;
    return -ENOSYS;
}
