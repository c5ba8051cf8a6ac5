/* Small helpers every guest shares, over the C bindings wit-bindgen generates for the
 * `sykli:target` world (target.h). Ownership follows wit-bindgen's C conventions: arguments
 * passed to host imports are borrowed (static strings are fine), values an export returns are
 * freed by the bindings after the call (so they must be heap copies), an export owns its
 * arguments (free them), and a caller owns what an import returns. */
#ifndef SYKLI_PLUGIN_H
#define SYKLI_PLUGIN_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

/* `-DVERSION=2.0.0` becomes the string "2.0.0". */
#define SYKLI_STR2(x) #x
#define SYKLI_STR(x) SYKLI_STR2(x)

/* A borrowed view of a NUL-terminated string, for arguments to host calls. */
static inline target_string_t sykli_str(const char *s) {
    target_string_t out;
    target_string_set(&out, s);
    return out;
}

/* A NUL-terminated heap copy of a WIT string (abort()s when out of memory). */
static inline char *sykli_cstr(const target_string_t *s) {
    char *out = malloc(s->len + 1);
    if (out == NULL) {
        abort();
    }
    memcpy(out, s->ptr, s->len);
    out[s->len] = '\0';
    return out;
}

/* Appends one formatted line to the task's log. */
static inline void sykli_log(sykli_target_host_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void sykli_log(sykli_target_host_level_t level, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    target_string_t msg = sykli_str(line);
    sykli_target_host_log(level, &msg);
}

/* The variant's name, as the WIT spells it. */
static inline const char *sykli_error_kind(const target_error_t *e) {
    switch (e->tag) {
    case SYKLI_TARGET_TYPES_ERROR_DENIED: return "denied";
    case SYKLI_TARGET_TYPES_ERROR_NOT_FOUND: return "not-found";
    case SYKLI_TARGET_TYPES_ERROR_INVALID: return "invalid";
    default: return "failed";
    }
}

/* The message every variant carries (they all hold one string, at the same place). */
static inline const target_string_t *sykli_error_message(const target_error_t *e) {
    return &e->val.denied;
}

/* Fills `err` with variant `tag` and a formatted message (heap-allocated: the bindings free
 * it after `run` returns). */
static inline void sykli_set_error(target_error_t *err, uint8_t tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void sykli_set_error(target_error_t *err, uint8_t tag, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    err->tag = tag;
    target_string_dup(&err->val.denied, line);
}

/* The value of setting `name` of the task as a heap C string, or NULL when it is not set. */
static inline char *sykli_setting(const target_task_t *task, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < task->settings.len; i++) {
        const sykli_target_types_pair_t *p = &task->settings.ptr[i];
        if (p->name.len == n && memcmp(p->name.ptr, name, n) == 0) {
            return sykli_cstr(&p->value);
        }
    }
    return NULL;
}

/* Fills `ret` (describe's result) with heap copies of the three strings. */
static inline void sykli_describe(target_info_t *ret, const char *name, const char *version,
                                  const char *description) {
    target_string_dup(&ret->name, name);
    target_string_dup(&ret->version, version);
    target_string_dup(&ret->description, description);
}

#endif
