/**
 * A stream's duplicate window in ms. JetStream stores it in nanoseconds (the relay writes it with
 * `nanos(ms)`); rounded rather than floored as nats' `millis` does, so a window set by another tool in
 * sub-millisecond steps reads as the nearest ms the relay's own settings could have written. A stream
 * without one reads as 0.
 */
export function streamDuplicateWindowMs(config: { readonly duplicate_window?: number }): number {
  return Math.round((config.duplicate_window ?? 0) / 1e6);
}
