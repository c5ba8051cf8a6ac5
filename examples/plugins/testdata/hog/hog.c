/* Test guest `hog`: `run` allocates 1 MiB blocks without bound, writing to every page so the
 * memory is really used, until the host's memory cap stops it. Should an allocation fail
 * instead of trapping (a host that lets memory.grow return -1), it aborts, which traps. */
#include "sykli_plugin.h"

#define BLOCK (1024 * 1024)

/* Every block links to the one before, from a global the compiler must keep: without a use
 * it could drop the malloc and memset altogether and leave an empty loop. */
void *hog_blocks = NULL;

void exports_target_describe(target_info_t *ret) {
    sykli_describe(ret, "hog", "1.0.0", "test guest: allocates without bound in run");
}

bool exports_target_run(target_task_t *task, target_outcome_t *ret, target_error_t *err) {
    (void)err;
    target_task_free(task);
    sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "hog: allocating without bound");
    for (size_t mib = 1;; mib++) {
        uint8_t *block = malloc(BLOCK);
        if (block == NULL) {
            sykli_log(SYKLI_TARGET_HOST_LEVEL_ERROR, "hog: malloc failed after %zu MiB", mib - 1);
            abort();
        }
        memset(block, (int)(mib & 0xff), BLOCK);
        memcpy(block, &hog_blocks, sizeof hog_blocks);
        hog_blocks = block;
        if (mib % 8 == 0) {
            sykli_log(SYKLI_TARGET_HOST_LEVEL_INFO, "hog: %zu MiB allocated", mib);
        }
    }
    ret->exit_code = 0;
    return true;
}
