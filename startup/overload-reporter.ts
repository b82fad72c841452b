/**
 * Every shed or timed-out request is counted, and said in the log without
 * flooding it: at most one warn line per kind per second, carrying how many
 * happened since the previous line of that kind. A burst of 10,000 sheds is
 * a handful of lines whose counts add up to the metric.
 */
export interface OverloadReporter<K extends string> {
  /** One shed or timed-out request of this kind. */
  report(kind: K, fields?: Record<string, unknown>): void;
  /** Writes any count not yet logged (on shutdown). */
  flush(): void;
}

export interface OverloadReporterOptions<K extends string> {
  log: { warn(fields: object, message: string): void };
  /** The message of each kind's line. */
  messages: Readonly<Record<K, string>>;
  /** Counts one event (the Prometheus counter). */
  count: (kind: K) => void;
  /** Milliseconds since the epoch; a dependency for tests. */
  now?: () => number;
  /** At most one line per kind per this many milliseconds. */
  intervalMs?: number;
}

export function createOverloadReporter<K extends string>(options: OverloadReporterOptions<K>): OverloadReporter<K> {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 1_000;
  const state = new Map<K, { lastAt: number; pending: number; fields: Record<string, unknown> | undefined; timer: NodeJS.Timeout | undefined }>();

  const write = (kind: K, count: number, fields: Record<string, unknown> | undefined) => {
    options.log.warn({ kind, count, ...fields }, options.messages[kind]);
  };
  const flushKind = (kind: K) => {
    const entry = state.get(kind);
    if (entry === undefined || entry.pending === 0) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    write(kind, entry.pending, entry.fields);
    entry.pending = 0;
    entry.lastAt = now();
  };

  return {
    report(kind, fields) {
      options.count(kind);
      const at = now();
      let entry = state.get(kind);
      if (entry === undefined) {
        entry = { lastAt: -Infinity, pending: 0, fields: undefined, timer: undefined };
        state.set(kind, entry);
      }
      entry.pending++;
      entry.fields = fields;
      if (at - entry.lastAt >= intervalMs) {
        flushKind(kind);
        return;
      }
      // Within the interval: the count waits for the next line, which comes even if the burst ends now.
      if (entry.timer === undefined) {
        entry.timer = setTimeout(() => flushKind(kind), entry.lastAt + intervalMs - at);
        entry.timer.unref();
      }
    },
    flush() {
      for (const kind of state.keys()) flushKind(kind);
    },
  };
}
