/* authz: the table of authz.h, and the checks that read it. */
#include "authz.h"

#include <stdio.h>
#include <string.h>

#include "words.h"

enum {
    OPERATOR = AUTH_ROLE_OPERATOR,
    DISPATCHER = AUTH_ROLE_DISPATCHER,
    SUPERVISOR = AUTH_ROLE_SUPERVISOR,
    LEADER = AUTH_ROLE_LEADER,
    UNIT = AUTH_ROLE_UNIT,
    ADMIN = AUTH_ROLE_ADMIN,
    AUDITOR = AUTH_ROLE_AUDITOR,
};

static const struct {
    unsigned roles;
    const char *what;
} table[AUTHZ_CALL_COUNT] = {
    [AUTHZ_SUBMIT] = {OPERATOR, "register a ticket"},
    [AUTHZ_CALLBACK] = {OPERATOR, "record a callback"},
    [AUTHZ_GET_TICKET] = {OPERATOR | DISPATCHER | SUPERVISOR | LEADER | ADMIN | AUDITOR,
                          "read a ticket without its lookup code"},
    [AUTHZ_LOOKUP] = {AUTHZ_ANYONE, "look a ticket up by its lookup code"},
    [AUTHZ_SEE_CALLER] = {OPERATOR, "see the caller's name and phone"},
    [AUTHZ_UNIT_ACTION] = {UNIT, "act for a unit"},
    [AUTHZ_LIST_UNIT] = {UNIT | DISPATCHER | SUPERVISOR | ADMIN, "list a unit's tickets"},
    [AUTHZ_LIST_TRIAGE] = {DISPATCHER | SUPERVISOR | LEADER | ADMIN, "list the triage queue"},
    [AUTHZ_TRIAGE_ASSIGN] = {DISPATCHER | SUPERVISOR | ADMIN, "assign a ticket in triage"},
    [AUTHZ_LIST_CASES] = {DISPATCHER | SUPERVISOR | LEADER | ADMIN, "list this queue"},
    [AUTHZ_DECIDE_EXTENSION] = {SUPERVISOR, "decide on an extension"},
    [AUTHZ_SIGN_OFF] = {LEADER, "sign off"},
    [AUTHZ_REGISTRY] = {ADMIN, "change units or routing rules"},
    [AUTHZ_LINKS] = {ADMIN | SUPERVISOR, "see the links"},
    [AUTHZ_LINK_ACCEPT] = {ADMIN, "accept a link's incarnation"},
    [AUTHZ_AUDIT_LOG] = {AUDITOR | SUPERVISOR | LEADER | ADMIN, "read the audit log"},
    [AUTHZ_AUDIT_FIGURES] = {AUDITOR | SUPERVISOR | LEADER | ADMIN, "read KPIs and reports"},
    [AUTHZ_AUDIT_VERIFY] = {AUDITOR | ADMIN, "verify the audit chain"},
    [AUTHZ_RULES_READ] = {DISPATCHER | SUPERVISOR | LEADER | ADMIN,
                          "read the routing rules, units and ticket owners"},
    [AUTHZ_TRIAGE_REROUTE] = {DISPATCHER | SUPERVISOR | ADMIN, "re-route the triage queue"},
    [AUTHZ_CITY_LISTS] = {AUTHZ_ANYONE, "read the city's lists"},
    [AUTHZ_STATS] = {AUDITOR | SUPERVISOR | ADMIN, "see the worker's figures"},
};

unsigned authz_roles(authz_call_t call)
{
    return call < AUTHZ_CALL_COUNT ? table[call].roles : 0;
}

const char *authz_what(authz_call_t call)
{
    return call < AUTHZ_CALL_COUNT ? table[call].what : "do this";
}

unsigned authz_role_bit(Dispatch__Role role)
{
    switch (role) {
    case DISPATCH__ROLE__ROLE_UNSPECIFIED:
        return 0;
    case DISPATCH__ROLE__ROLE_OPERATOR:
        return AUTH_ROLE_OPERATOR;
    case DISPATCH__ROLE__ROLE_DISPATCHER:
        return AUTH_ROLE_DISPATCHER;
    case DISPATCH__ROLE__ROLE_SUPERVISOR:
        return AUTH_ROLE_SUPERVISOR;
    case DISPATCH__ROLE__ROLE_LEADER:
        return AUTH_ROLE_LEADER;
    case DISPATCH__ROLE__ROLE_UNIT:
        return AUTH_ROLE_UNIT;
    case DISPATCH__ROLE__ROLE_ADMIN:
        return AUTH_ROLE_ADMIN;
    case DISPATCH__ROLE__ROLE_AUDITOR:
        return AUTH_ROLE_AUDITOR;
    }
    return 0;
}

int authz_named(refusal_t *refusal, authz_call_t call, Dispatch__Role role)
{
    if (authz_role_bit(role) & authz_roles(call))
        return 0;
    const char *word = words_suffix(&dispatch__role__descriptor, (int)role);
    return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "role", "role %s may not %s",
                  word ? word : "?", authz_what(call));
}

bool authz_key_may(authz_call_t call, const auth_actor_t *actor)
{
    unsigned roles = authz_roles(call);
    return !actor || roles == AUTHZ_ANYONE || (actor->roles & roles) != 0;
}

int authz_key(refusal_t *refusal, authz_call_t call, const auth_actor_t *actor)
{
    if (authz_key_may(call, actor))
        return 0;
    char roles[96];
    auth_roles_format(actor->roles, roles, sizeof(roles));
    return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "actor",
                  "%s (roles: %s) may not %s", actor->name, roles[0] ? roles : "none",
                  authz_what(call));
}

int authz_unit(refusal_t *refusal, const char *field, const auth_actor_t *actor,
               const char *actor_id, const char *unit_id)
{
    if (actor) {
        if (auth_actor_acts_for_unit(actor, unit_id))
            return 0;
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, field,
                      "key %s does not act for unit %s", actor->name, unit_id);
    }
    const char *slash = strchr(actor_id, '/');
    size_t len = slash ? (size_t)(slash - actor_id) : strlen(actor_id);
    if (len == strlen(unit_id) && memcmp(actor_id, unit_id, len) == 0)
        return 0;
    return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, field,
                  "a unit may act only on its own tickets");
}

int authz_actor(refusal_t *refusal, const auth_actor_t *actor, const char *named,
                const char *fallback, char *buf, const char **ret)
{
    if (!actor) {
        *ret = *named ? named : fallback;
        return 0;
    }
    if (actor->kind == AUTH_KIND_GATEWAY) {
        if (!*named) {
            *ret = actor->name;
            return 0;
        }
        int n = snprintf(buf, LIMIT_ID + 1, "%s/%s", actor->name, named);
        if (n < 0 || n > LIMIT_ID)
            return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_TOO_LARGE, "actor",
                          "actor %s/%s is longer than %d bytes", actor->name, named, LIMIT_ID);
        *ret = buf;
        return 0;
    }
    if (*named && strcmp(named, actor->name) != 0)
        return refuse(refusal, DISPATCH__ERROR_CODE__ERROR_CODE_FORBIDDEN, "actor",
                      "actor %s is not the actor of this connection's key (%s)", named,
                      actor->name);
    *ret = actor->name;
    return 0;
}
