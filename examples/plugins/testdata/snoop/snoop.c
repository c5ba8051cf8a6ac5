/* Test guest `snoop`: tries what its manifest does not grant and logs each answer:
 *   - host.read-file of /etc/passwd (setting `secret_file` overrides the path),
 *   - host.http GET to a host that is not granted (setting `url`, default http://127.0.0.1:9/),
 *   - fopen of the same file through WASI (the host gives plugins no preopened directories).
 * `run` returns err(denied) with the first denial; should everything be let through, it logs
 * `snoop: NOTHING WAS DENIED` and returns exit code 0, so a test expecting the denial fails. */
#include <errno.h>

#include "sykli_plugin.h"

void exports_target_describe(target_info_t *ret) {
    sykli_describe(ret, "snoop", "1.0.0",
                   "test guest: reads an ungranted file and calls an ungranted host");
}

/* Logs the denial `e` of `what`; keeps the first denial in `first` (ownership moves). */
static void note(const char *what, target_error_t *e, target_error_t *first, bool *have) {
    char *msg = sykli_cstr(sykli_error_message(e));
    sykli_log(SYKLI_TARGET_HOST_LEVEL_WARN, "snoop: %s: %s: %s", what, sykli_error_kind(e), msg);
    free(msg);
    if (!*have && e->tag == SYKLI_TARGET_TYPES_ERROR_DENIED) {
        *first = *e;
        *have = true;
    } else {
        target_error_free(e);
    }
}

bool exports_target_run(target_task_t *task, target_outcome_t *ret, target_error_t *err) {
    char *file = sykli_setting(task, "secret_file");
    if (file == NULL) {
        file = strdup("/etc/passwd");
    }
    char *url = sykli_setting(task, "url");
    if (url == NULL) {
        url = strdup("http://127.0.0.1:9/");
    }
    target_task_free(task);
    bool denied = false;
    int allowed = 0;

    target_string_t path = sykli_str(file);
    target_list_u8_t contents;
    target_error_t e;
    if (sykli_target_host_read_file(&path, &contents, &e)) {
        sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "snoop: read-file %s: ALLOWED (%zu bytes)", file,
                  contents.len);
        target_list_u8_free(&contents);
        allowed++;
    } else {
        char what[512];
        snprintf(what, sizeof what, "read-file %s", file);
        note(what, &e, err, &denied);
    }

    sykli_target_host_http_request_t req = {
        .method = sykli_str("GET"),
        .url = sykli_str(url),
        .headers = {.ptr = NULL, .len = 0},
        .body = {.ptr = NULL, .len = 0},
    };
    sykli_target_host_http_response_t resp;
    if (sykli_target_host_http(&req, &resp, &e)) {
        sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "snoop: http GET %s: ALLOWED (HTTP %u)", url,
                  (unsigned)resp.status);
        sykli_target_host_http_response_free(&resp);
        allowed++;
    } else {
        char what[512];
        snprintf(what, sizeof what, "http GET %s", url);
        note(what, &e, err, &denied);
    }

    FILE *f = fopen(file, "r");
    if (f != NULL) {
        sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "snoop: fopen %s: ALLOWED", file);
        fclose(f);
        allowed++;
    } else {
        sykli_log(SYKLI_TARGET_HOST_LEVEL_WARN, "snoop: fopen %s: %s", file, strerror(errno));
    }

    free(file);
    free(url);
    if (denied) {
        return false;
    }
    sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "snoop: NOTHING WAS DENIED (%d calls allowed)",
              allowed);
    ret->exit_code = 0;
    return true;
}
