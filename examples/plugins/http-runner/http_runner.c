/* The `http-runner` target plugin: runs each task on a "runner" HTTP service, through the
 * host's grant-checked `http`. It POSTs the task to the URL in the target setting `runner_url`
 * as JSON, `{"command": "...", "env": {"NAME": "value", ...}, "workdir": "..."}`, logs the
 * response body (the command's output) line by line, and takes the task's exit code from the
 * response header `x-exit-code`. A non-2xx status or a missing header is an error.
 *
 * Its manifest must grant the runner's `host:port` in `hosts`. */
#include <errno.h>
#include <strings.h>

#include "sykli_plugin.h"

#ifndef VERSION
#define VERSION 0.1.0
#endif
#define VERSION_STR SYKLI_STR(VERSION)

/* A growable byte buffer; abort()s when out of memory. */
typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf_t;

static void buf_push(buf_t *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->ptr = realloc(b->ptr, cap);
        if (b->ptr == NULL) {
            abort();
        }
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, data, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) { buf_push(b, s, strlen(s)); }

/* A JSON string literal of `s` (UTF-8 passes through; control characters are escaped). */
static void buf_json(buf_t *b, const target_string_t *s) {
    buf_str(b, "\"");
    for (size_t i = 0; i < s->len; i++) {
        uint8_t c = s->ptr[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_push(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_str(b, esc);
        } else {
            buf_push(b, &c, 1);
        }
    }
    buf_str(b, "\"");
}

static void task_json(buf_t *b, const target_task_t *task) {
    buf_str(b, "{\"command\":");
    buf_json(b, &task->command);
    buf_str(b, ",\"env\":{");
    for (size_t i = 0; i < task->env.len; i++) {
        if (i > 0) {
            buf_str(b, ",");
        }
        buf_json(b, &task->env.ptr[i].name);
        buf_str(b, ":");
        buf_json(b, &task->env.ptr[i].value);
    }
    buf_str(b, "},\"workdir\":");
    buf_json(b, &task->workdir);
    buf_str(b, "}");
}

/* The value of header `name` (ASCII case-insensitive) as a heap C string, or NULL. */
static char *header(const sykli_target_host_http_response_t *resp, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < resp->headers.len; i++) {
        const sykli_target_host_pair_t *h = &resp->headers.ptr[i];
        if (h->name.len == n && strncasecmp((const char *)h->name.ptr, name, n) == 0) {
            return sykli_cstr(&h->value);
        }
    }
    return NULL;
}

/* Logs `body` one line at a time (a last line without a newline included). */
static void log_lines(const target_list_u8_t *body) {
    size_t start = 0;
    for (size_t i = 0; i <= body->len; i++) {
        if (i == body->len || body->ptr[i] == '\n') {
            if (i > start || i < body->len) {
                target_string_t line = {.ptr = body->ptr + start, .len = i - start};
                sykli_target_host_log(SYKLI_TARGET_HOST_LEVEL_INFO, &line);
            }
            start = i + 1;
        }
    }
}

void exports_target_describe(target_info_t *ret) {
    sykli_describe(ret, "http-runner", VERSION_STR,
                   "runs each task on a runner HTTP service (setting runner_url), "
                   "through host.http");
}

bool exports_target_run(target_task_t *task, target_outcome_t *ret, target_error_t *err) {
    bool ok = false;
    buf_t body = {0};
    char *url = sykli_setting(task, "runner_url");
    if (url == NULL) {
        sykli_set_error(err, SYKLI_TARGET_TYPES_ERROR_INVALID,
                        "http-runner: the target setting `runner_url` is not set");
        goto out;
    }
    sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "http-runner plugin %s: POST %s", VERSION_STR, url);
    task_json(&body, task);

    sykli_target_host_pair_t headers[1] = {
        {.name = sykli_str("content-type"), .value = sykli_str("application/json")},
    };
    sykli_target_host_http_request_t req = {
        .method = sykli_str("POST"),
        .url = sykli_str(url),
        .headers = {.ptr = headers, .len = 1},
        .body = {.ptr = body.ptr, .len = body.len},
    };
    sykli_target_host_http_response_t resp;
    if (!sykli_target_host_http(&req, &resp, err)) {
        char *msg = sykli_cstr(sykli_error_message(err));
        sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "http-runner: POST %s: %s: %s", url,
                  sykli_error_kind(err), msg);
        free(msg);
        goto out;
    }
    log_lines(&resp.body);
    char *code = header(&resp, "x-exit-code");
    if (resp.status < 200 || resp.status > 299) {
        sykli_set_error(err, SYKLI_TARGET_TYPES_ERROR_FAILED,
                        "http-runner: the runner at %s answered HTTP %u", url,
                        (unsigned)resp.status);
    } else if (code == NULL) {
        sykli_set_error(err, SYKLI_TARGET_TYPES_ERROR_FAILED,
                        "http-runner: the runner at %s sent no x-exit-code header", url);
    } else {
        char *end = NULL;
        errno = 0;
        long n = strtol(code, &end, 10);
        if (errno != 0 || end == code || *end != '\0' || n < INT32_MIN || n > INT32_MAX) {
            sykli_set_error(err, SYKLI_TARGET_TYPES_ERROR_FAILED,
                            "http-runner: the runner at %s sent a bad x-exit-code `%s`", url,
                            code);
        } else {
            ret->exit_code = (int32_t)n;
            ok = true;
        }
    }
    free(code);
    sykli_target_host_http_response_free(&resp);
out:
    free(body.ptr);
    free(url);
    target_task_free(task);
    return ok;
}
