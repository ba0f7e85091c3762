/**
 * The experiment command's exit status: all a batch scheduler (a Slurm job array, a
 * Kubernetes Indexed Job) reads of a run. One table, printed by --help and the README.
 */
import { AXES } from './schema.js';

export const EXIT_OK = 0;
/** A run failed: a policy error, wrong data read back, a kernel error (EFAULT, EBUSY, ...), the watchdog. */
export const EXIT_RUN_FAILED = 1;
/** Bad options or input, refused before anything ran (an unknown option, a policy or trace that does not load). */
export const EXIT_USAGE = 2;
/** The GPU could not be opened or was lost. */
export const EXIT_GPU = 3;
/** merge refused its parts (different sweeps, adapters, versions or commands; missing or repeated runs). */
export const EXIT_MERGE_REFUSED = 4;

export const EXIT_CODES_HELP = `Exit status:
  ${EXIT_OK}  every run ok (verified word by word)
  ${EXIT_RUN_FAILED}  a run failed: policy error, wrong data, kernel error (EFAULT, EBUSY, ENOMEM, ...),
     no progress (the watchdog); the other runs still ran, and every output marks it failed
  ${EXIT_USAGE}  bad options or input (unknown option, a policy or trace that does not load,
     ${AXES.policy.flag} with ${AXES.protocol.flag} valid-flag, --out holding a different sweep); nothing ran
  ${EXIT_GPU}  the GPU could not be opened or was lost
  ${EXIT_MERGE_REFUSED}  merge refused the parts (a different sweep, adapter, project version or command;
     runs missing, repeated or out of range)`;
