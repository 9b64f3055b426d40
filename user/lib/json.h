/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* json.h - a small streaming JSON writer (in the manner of bpftool's
 * json_writer): it places the commas, the caller the structure. */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <stdio.h>
#include <linux/types.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	int need_comma[JSON_MAX_DEPTH];
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j, const char *key);  /* key NULL: a value */
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_str(struct json *j, const char *key, const char *v);
void json_u64(struct json *j, const char *key, __u64 v);
void json_f64(struct json *j, const char *key, double v);
void json_bool(struct json *j, const char *key, int v);
void json_null(struct json *j, const char *key);
void json_end(struct json *j); /* final newline */

#endif
