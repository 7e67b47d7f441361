/* dispatchctl keys: the city's CURVE keys (common/auth.h), in the keys dir
 * of the topology (config_keys_dir()).
 *
 *   keys new NAME --kind worker|unit|unit-gateway|person|gateway [--roles R1,R2]
 *            [--unit U] [--worker W]
 *   keys list
 *   keys revoke NAME
 *
 * A key added or revoked takes effect in every running worker within
 * AUTH_RESCAN_MS, without a restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ctl_common.h"

static int keys_dir(ctl_t *ctl, const char **ret)
{
    if (!ctl->config)
        return ctl_usage_error("keys: no topology file (--config): it says where the keys are");
    *ret = config_keys_dir(ctl->config);
    return CTL_EXIT_OK;
}

static int keys_new(ctl_t *ctl, const char *dir, int argc, char **argv)
{
    const char *kind = NULL, *roles = NULL, *unit = NULL, *worker = NULL;
    const ctl_option_t options[] = {
        {.name = "kind", .kind = CTL_OPTION_TEXT, .value = &kind},
        {.name = "roles", .kind = CTL_OPTION_TEXT, .value = &roles},
        {.name = "unit", .kind = CTL_OPTION_TEXT, .value = &unit},
        {.name = "worker", .kind = CTL_OPTION_TEXT, .value = &worker},
    };
    int first = 0;
    int rc = ctl_parse_options(argc, argv, options, CTL_COUNT(options), NULL, &first);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (first != argc - 1)
        return ctl_usage_error("usage: keys new NAME --kind K [--roles R] [--unit U] "
                               "[--worker W]");
    auth_actor_t actor = {0};
    snprintf(actor.name, sizeof(actor.name), "%s", argv[first]);
    if (!kind || auth_kind_parse(kind, &actor.kind) < 0)
        return ctl_usage_error("keys new: --kind worker, unit, unit-gateway, person or gateway");
    if (roles && auth_roles_parse(roles, &actor.roles) < 0)
        return ctl_usage_error("keys new: --roles: a comma list of operator, dispatcher, "
                               "supervisor, leader, unit, admin, auditor");
    if (actor.kind == AUTH_KIND_UNIT && !unit)
        return ctl_usage_error("keys new: a unit key needs --unit");
    snprintf(actor.unit, sizeof(actor.unit), "%s", unit ? unit : "");
    snprintf(actor.worker, sizeof(actor.worker), "%s",
             worker                           ? worker
             : actor.kind == AUTH_KIND_WORKER ? actor.name
                                              : "");
    rc = auth_key_new(dir, &actor);
    if (rc == -EEXIST)
        return ctl_fail(CTL_EXIT_REFUSED, "keys new: %s/%s.key exists", dir, actor.name);
    if (rc == -EINVAL)
        return ctl_usage_error("keys new: '%s' is not a key name ([A-Za-z0-9._-], 1-63 bytes)",
                               actor.name);
    if (rc < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "keys new: %s: %s", dir, strerror(-rc));
    if (!ctl->json)
        printf("%s/%s.key\n", dir, actor.name);
    return CTL_EXIT_OK;
}

static int keys_list(ctl_t *ctl, const char *dir)
{
    auth_actor_t *actors;
    size_t count, skipped;
    int rc = auth_keys_list(dir, &actors, &count, &skipped);
    if (rc < 0)
        return ctl_fail(CTL_EXIT_INTERNAL, "keys list: %s: %s", dir, strerror(-rc));
    for (size_t i = 0; i < count; i++) {
        char roles[128];
        auth_roles_format(actors[i].roles, roles, sizeof(roles));
        const char *of = actors[i].unit[0] ? actors[i].unit : actors[i].worker;
        if (ctl->json)
            printf("{\"actor\":\"%s\",\"kind\":\"%s\",\"roles\":\"%s\",\"unit\":\"%s\","
                   "\"worker\":\"%s\",\"key\":\"%s\"}\n",
                   actors[i].name, auth_kind_name(actors[i].kind), roles, actors[i].unit,
                   actors[i].worker, actors[i].key);
        else
            printf("%-24s %-12s %-40s %-16s %s\n", actors[i].name, auth_kind_name(actors[i].kind),
                   roles[0] ? roles : "-", of[0] ? of : "-", actors[i].key);
    }
    if (skipped)
        fprintf(stderr, "dispatchctl: %zu files in %s are not valid keys\n", skipped, dir);
    free(actors);
    return CTL_EXIT_OK;
}

int ctl_cmd_keys(ctl_t *ctl, int argc, char **argv)
{
    const char *dir = NULL;
    int rc = keys_dir(ctl, &dir);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (argc >= 3 && strcmp(argv[1], "new") == 0)
        return keys_new(ctl, dir, argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return keys_list(ctl, dir);
    if (argc == 3 && strcmp(argv[1], "revoke") == 0) {
        rc = auth_key_revoke(dir, argv[2]);
        if (rc == -ENOENT)
            return ctl_fail(CTL_EXIT_NOT_FOUND, "keys revoke: no key %s/%s.key", dir, argv[2]);
        if (rc < 0)
            return ctl_fail(CTL_EXIT_INTERNAL, "keys revoke: %s", strerror(-rc));
        return CTL_EXIT_OK;
    }
    return ctl_usage_error("usage: keys new NAME --kind K ... | keys list | keys revoke NAME");
}
