/* The `spawn` target plugin: runs each task's command with `sh -c` on the host, through the
 * host's grant-checked `spawn`, in the task's working directory and with the task's
 * environment; the task's exit code is the command's.
 *
 * Its manifest must grant `spawn = ["sh"]` and the directories tasks run in. Build with
 * `-DVERSION=1.2.3` (see ../README.md); every run starts by logging `spawn plugin VERSION`
 * (and, from the second attempt of a retried task, `spawn plugin VERSION: attempt N`). */
#include "sykli_plugin.h"

#ifndef VERSION
#define VERSION 0.1.0
#endif
#define VERSION_STR SYKLI_STR(VERSION)

void exports_target_describe(target_info_t *ret) {
    sykli_describe(ret, "spawn", VERSION_STR,
                   "runs each task's command with sh -c on the host, through host.spawn");
}

bool exports_target_run(target_task_t *task, target_outcome_t *ret, target_error_t *err) {
    sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "spawn plugin %s", VERSION_STR);
    if (task->attempt > 1) {
        sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "spawn plugin %s: attempt %u", VERSION_STR,
                  (unsigned)task->attempt);
    }

    target_string_t args[2] = {sykli_str("-c"), task->command};
    sykli_target_host_command_t cmd = {
        .program = sykli_str("sh"),
        .args = {.ptr = args, .len = 2},
        .env = {.ptr = task->env.ptr, .len = task->env.len},
        .cwd = {.is_some = true, .val = task->workdir},
    };
    int32_t code = 0;
    bool ok = sykli_target_host_spawn(&cmd, &code, err);
    if (ok) {
        ret->exit_code = code;
    } else {
        char *msg = sykli_cstr(sykli_error_message(err));
        sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "spawn plugin %s: sh -c failed: %s: %s",
                  VERSION_STR, sykli_error_kind(err), msg);
        free(msg);
    }
    target_task_free(task);
    return ok;
}
