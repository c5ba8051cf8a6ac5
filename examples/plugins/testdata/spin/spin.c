/* Test guest `spin`: `run` never returns (a busy loop with no host calls), so only the host's
 * deadline (epoch interruption) can stop it. */
#include "sykli_plugin.h"

void exports_target_describe(target_info_t *ret) {
    sykli_describe(ret, "spin", "1.0.0", "test guest: loops forever in run");
}

bool exports_target_run(target_task_t *task, target_outcome_t *ret, target_error_t *err) {
    (void)err;
    sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "spin: looping forever");
    target_task_free(task);
    volatile uint64_t n = 0;
    for (;;) {
        n++;
    }
    ret->exit_code = 0;
    return true;
}
