/* dispatch-audit: see audit.h and worker.h. */
#include "audit.h"
#include "worker.h"

int main(int argc, char **argv)
{
    return worker_main(argc, argv, &audit_kind);
}
