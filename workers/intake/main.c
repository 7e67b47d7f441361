/* dispatch-intake: see intake.h and worker.h. */
#include "intake.h"
#include "worker.h"

int main(int argc, char **argv)
{
    return worker_main(argc, argv, &intake_kind);
}
