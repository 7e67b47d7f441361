/* authz: who may do what, and on which tickets: the city's one table of
 * permissions. Every endpoint asks it; no worker keeps a list of its own.
 *
 *   call                 roles                                   tickets
 *   submit, callback     operator                                any
 *   get a ticket         operator dispatcher supervisor leader   any
 *                        admin auditor
 *   look a ticket up     every key, with the ticket id and       that one,
 *                        its lookup code                         public view
 *   see caller's name    operator                                any
 *     and phone
 *   unit actions         unit (kind unit: its own unit;          dispatched
 *                        unit-gateway: every unit)               to the unit
 *   list a unit's queue  unit dispatcher supervisor admin        the unit's
 *                                                                (unit: own)
 *   triage queue, assign dispatcher supervisor admin (+ leader   triage
 *                        lists)
 *   escalation queues    dispatcher supervisor leader admin      any
 *   decide extension     supervisor                              any
 *   sign off             leader                                  any
 *   units and rules      admin                                   -
 *   see links            admin supervisor                        -
 *   accept incarnation   admin                                   -
 *   audit log, history   auditor supervisor leader admin         any, masked
 *   KPIs, reports        auditor supervisor leader admin         any
 *   verify the chain     auditor admin                           -
 *   a worker's figures   auditor supervisor admin                -
 *
 * A role comes from the CURVE key (auth.h). Where a request names a role
 * (AdminRequest.role) it must be one of the key's; elsewhere any role of
 * the key counts. On a plain endpoint (no key) only a named role is
 * checked, and requests without one are let through: plain ZMTP is for
 * loopback tests.
 */
#ifndef DISPATCH_AUTHZ_H
#define DISPATCH_AUTHZ_H

#include <stdbool.h>

#include "auth.h"
#include "dispatch.pb-c.h"
#include "refusal.h"

typedef enum authz_call {
    AUTHZ_SUBMIT,
    AUTHZ_CALLBACK,
    AUTHZ_GET_TICKET,
    AUTHZ_LOOKUP,
    AUTHZ_SEE_CALLER,
    AUTHZ_UNIT_ACTION,
    AUTHZ_LIST_UNIT,
    AUTHZ_LIST_TRIAGE,
    AUTHZ_TRIAGE_ASSIGN,
    AUTHZ_LIST_CASES,
    AUTHZ_DECIDE_EXTENSION,
    AUTHZ_SIGN_OFF,
    AUTHZ_REGISTRY,
    AUTHZ_LINKS,
    AUTHZ_LINK_ACCEPT,
    AUTHZ_AUDIT_LOG,
    AUTHZ_AUDIT_FIGURES,
    AUTHZ_AUDIT_VERIFY,
    AUTHZ_RULES_READ,     /* list rules, units, ticket owners; explain a route */
    AUTHZ_TRIAGE_REROUTE, /* route the triage queue again by the rules */
    AUTHZ_CITY_LISTS,     /* the city's categories and areas */
    AUTHZ_STATS,
    AUTHZ_CALL_COUNT
} authz_call_t;

/* Every key, whatever its roles (authz_roles() of a public call). */
#define AUTHZ_ANYONE (~0u)

/* The auth.h role bits that may make the call. */
unsigned authz_roles(authz_call_t call);
/* What the call does, for refusals ("assign a ticket in triage"). */
const char *authz_what(authz_call_t call);

/* The auth.h bit of a Role; 0 for ROLE_UNSPECIFIED or one unknown. */
unsigned authz_role_bit(Dispatch__Role role);

/* A request that names its role: FORBIDDEN unless that role may make the
 * call ("role X may not <what>"); 0 when it may. */
int authz_named(refusal_t *refusal, authz_call_t call, Dispatch__Role role);
/* A request without a role: FORBIDDEN unless one of the key's roles may
 * make the call; 0 when it may, or when there is no key (plain). */
int authz_key(refusal_t *refusal, authz_call_t call, const auth_actor_t *actor);
/* The same as a yes or no, with no refusal. */
bool authz_key_may(authz_call_t call, const auth_actor_t *actor);

/* A unit-role request about unit_id: FORBIDDEN (naming field) unless the
 * key acts for that unit. Without a key, the unit is the part of actor_id
 * before any '/' (plain endpoints only). */
int authz_unit(refusal_t *refusal, const char *field, const auth_actor_t *actor,
               const char *actor_id, const char *unit_id);

/* The actor a request to intake is recorded under. With no key: the
 * request's own (or fallback when it names none). A gateway key speaks for
 * the people behind it: "<gateway>/<named>" (the key's name alone when it
 * names none). Any other key is its own actor: a request naming another is
 * FORBIDDEN. TOO_LARGE when the result passes LIMIT_ID bytes. buf holds
 * LIMIT_ID + 1 bytes; *ret points into it or at named/fallback. */
int authz_actor(refusal_t *refusal, const auth_actor_t *actor, const char *named,
                const char *fallback, char *buf, const char **ret);

#endif
