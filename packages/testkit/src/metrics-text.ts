/**
 * The value of an unlabelled series in a Prometheus text exposition (`name value`), undefined when the
 * text has none. Enough for the prom-client output the relay and the API serve, which writes no
 * timestamps; labelled series and histograms are read through a real Prometheus (`startPrometheus`).
 */
export function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
