/**
 * The benchmark's default sizes, apart from the benchmark itself so that the CLI can show them in
 * `bench --help` without loading the benchmark (and the repository code it uses) at every start-up.
 */

/** Default sizes (registrations): the original benchmark's 1K–50K, and 520K ≈ 1,005,000 rows. */
export const DEFAULT_SIZES = [1000, 5000, 10000, 25000, 50000, 520000];
/** Sizes of the `--quick` smoke run. */
export const QUICK_SIZES = [1000, 5000];
/** Sizes of the scaling case (`bench --scale`): 520K ≈ 1.0M rows and 5.2M ≈ 10.1M rows. */
export const SCALE_SIZES = [520_000, 5_200_000];
