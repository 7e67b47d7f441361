/* metrics: stub replaced below */
#include "gateway_private.h"
enum MHD_Result metrics_serve(gateway_t *self, struct MHD_Connection *connection)
{
    return gateway_respond(connection, 200, "text/plain; version=0.0.4", "", 0);
}
