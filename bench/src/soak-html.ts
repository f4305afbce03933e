// The soak report as one self-contained HTML page: inline SVG line charts, no scripts, no CDN.

export interface ChartSeries {
  readonly name: string;
  readonly color: string;
  /** One value per sample time; null leaves a gap. */
  readonly values: readonly (number | null)[];
}

export interface SoakPage {
  readonly title: string;
  readonly machine: string;
  /** Seconds since the load started, one per sample. */
  readonly times: readonly number[];
  /** Relay SIGKILL instants, seconds since the load started. */
  readonly kills: readonly number[];
  readonly loadEnd: number;
  readonly charts: readonly { title: string; unit: string; series: readonly ChartSeries[] }[];
  readonly summary: readonly (readonly [string, string])[];
  readonly verdict: string;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2 or 5 times a power of ten, at least `x / 4`: a tick step giving about four ticks up to `x`. */
function niceStep(x: number): number {
  const raw = Math.max(x, 1e-9) / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
}

const W = 860;
const H = 240;
const M = { left: 64, right: 16, top: 28, bottom: 32 };

function lineChart(page: SoakPage, chart: SoakPage['charts'][number]): string {
  const xMax = Math.max(page.loadEnd, ...page.times, 1);
  const values = chart.series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const yStep = niceStep(Math.max(...values, 0));
  const yMax = Math.max(yStep, Math.ceil(Math.max(...values, 0) / yStep) * yStep);
  const xStep = niceStep(xMax);
  const x = (t: number) => M.left + (t / xMax) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - (v / yMax) * (H - M.top - M.bottom);
  const out: string[] = [];

  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toPrecision(6)}</text>`);
  }
  for (let t = 0; t <= xMax + 1e-9; t += xStep) {
    out.push(`<text x="${x(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${t} s</text>`);
  }
  for (const k of page.kills) {
    out.push(
      `<line x1="${x(k)}" x2="${x(k)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#d33" stroke-dasharray="4 3"><title>relay SIGKILL at ${k.toFixed(1)} s</title></line>`,
    );
  }
  out.push(
    `<line x1="${x(page.loadEnd)}" x2="${x(page.loadEnd)}" y1="${M.top}" y2="${H - M.bottom}" stroke="#888" stroke-dasharray="2 2"><title>load ends</title></line>`,
  );
  for (const s of chart.series) {
    // One path, restarting (M) after every gap.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      const t = page.times[i];
      if (v === null || t === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`);
  }
  const legend = chart.series
    .map(
      (s, i) =>
        `<text x="${M.left + 8 + i * 170}" y="${M.top - 10}" style="fill: ${s.color}">■ ${esc(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${esc(chart.title)} (${esc(chart.unit)})</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(chart.title)}">
<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#444"/>
<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#444"/>
${out.join('\n')}
${legend}
</svg></figure>`;
}

export function soakHtml(page: SoakPage): string {
  const rows = page.summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(page.title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 900px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
figure { margin: 0 0 20px; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #444; }
.note { color: #666; }
</style></head><body>
<h1>${esc(page.title)}</h1>
<p><strong>${esc(page.verdict)}</strong></p>
<p class="note">${esc(page.machine)}</p>
<table>${rows}</table>
<p class="note">Samples every 5 s. Red dashed lines: relay SIGKILLed and a new one started at once. Grey dotted line: the load ends (the backlog then drains).</p>
${page.charts.map((c) => lineChart(page, c)).join('\n')}
</body></html>
`;
}
