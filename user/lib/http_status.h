/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* http_status.h - reason phrases, for every HTTP responder in sluice (the
 * metrics endpoint, sluice-l7, the mock backend). */
#ifndef SLUICE_HTTP_STATUS_H
#define SLUICE_HTTP_STATUS_H

/* RFC 9110's phrase for a status; for one it does not name, the class's
 * ("Client Error", ...): clients read the number, never the phrase. */
const char *http_status_reason(int status);

#endif
