/* dispatchctl commands on the audit (ctl_audit.c): the hash chain check,
 * a ticket's recorded history, the live stream, KPIs and the special
 * report (docs/protocol.md section 7, docs/kpi.md). */
#ifndef DISPATCH_CTL_AUDIT_H
#define DISPATCH_CTL_AUDIT_H

#include "ctl_common.h"

/* Exit code of "audit verify" when the chain is broken. */
#define CTL_EXIT_BROKEN 1

int ctl_cmd_audit(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_tail(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_kpi(ctl_t *ctl, int argc, char **argv);
int ctl_cmd_report(ctl_t *ctl, int argc, char **argv);

#endif
