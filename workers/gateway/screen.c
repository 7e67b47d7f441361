#include "screen.h"
#include "gateway_private.h"
enum MHD_Result screen_serve(gateway_t *self, struct MHD_Connection *connection, const char *url,
                             const gateway_params_t *params)
{
    return gateway_respond_error(connection, 404, "no screen yet");
}
