// Generated from chalicelib/coalescing.py by `python -m chalicelib.core.coalescing --js`: do not edit.
export const WINDOW_MS = 250;
export const PUSHED_STOCK_KEPT_MS = 1500;
/** Whether a stock change seen at `at` replaces the one known from `knownAt` (arriving later). */
export const supersedes = (at, knownAt) => knownAt == null || at >= knownAt;
