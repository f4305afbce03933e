/**
 * The value of one series in a Prometheus text exposition, named as the exposition writes it
 * (`outbox_pending`, or `outbox_resolved_total{outcome="absent"}` with its labels in order), undefined
 * when the text has none. Enough for the prom-client output the relay and the API serve, which writes
 * no timestamps; queries over series go through a real Prometheus (`startPrometheus`).
 */
export function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
