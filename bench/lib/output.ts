/**
 * Output of the benchmarks: aligned text tables, the results JSON (a stable shape, non-finite numbers
 * written as null so the file always parses), and a self-contained SVG plot of throughput over time.
 */

/** Text table: a header, a rule, and the rows; columns in `rightAligned` are padded on the left. */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number> = new Set(),
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]) =>
    header
      .map((_, i) => {
        const c = r[i] ?? '';
        const w = widths[i] ?? 0;
        return rightAligned.has(i) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** An integer with thousands separators (en-US), or `–` when not finite. */
export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

/** Milliseconds from seconds, with `digits` decimals, or `–` when not finite. */
export function fmtMs(seconds: number, digits = 0): string {
  return Number.isFinite(seconds) ? `${(seconds * 1000).toFixed(digits)} ms` : '–';
}

/** Seconds with `digits` decimals, or `–` when not finite. */
export function fmtS(seconds: number, digits = 2): string {
  return Number.isFinite(seconds) ? `${seconds.toFixed(digits)} s` : '–';
}

/** JSON of a results object: NaN and ±Infinity become null (JSON has no such numbers), 2-space indent. */
export function resultsJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** `<kind>-<UTC time>.json`, the time without colons (file-system safe) and to the second. */
export function resultsFileName(kind: string, date: Date): string {
  if (!/^[a-z0-9-]+$/.test(kind))
    throw new RangeError(`results kind must be lowercase letters, digits and -, got ${kind}`);
  return `${kind}-${date
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z')}.json`;
}

const escapeXml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** One line of a throughput plot. */
export interface Series {
  label: string;
  color: string;
  /** Seconds since the start, and items per second. */
  points: readonly { t: number; v: number }[];
}

/**
 * A self-contained SVG line chart (no script, no external reference) of rates over time, with axes
 * labelled in seconds and items per second.
 */
export function throughputSvg(title: string, series: readonly Series[], width = 800, height = 360): string {
  const pad = { left: 70, right: 20, top: 40, bottom: 45 };
  const all = series.flatMap((s) => s.points);
  const maxT = Math.max(1, ...all.map((p) => p.t));
  const maxV = Math.max(1, ...all.map((p) => p.v));
  const niceV = niceCeil(maxV);
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const x = (t: number) => pad.left + (t / maxT) * w;
  const y = (v: number) => pad.top + h - (v / niceV) * h;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (niceV * i) / 4;
    parts.push(
      `<line x1="${pad.left}" x2="${pad.left + w}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${pad.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Math.round(v).toLocaleString('en-US')}</text>`,
    );
    const t = (maxT * i) / 4;
    parts.push(
      `<text x="${x(t).toFixed(1)}" y="${pad.top + h + 18}" text-anchor="middle">${t.toFixed(0)} s</text>`,
    );
  }
  parts.push(
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${pad.top + h}" stroke="#333"/>`,
    `<line x1="${pad.left}" x2="${pad.left + w}" y1="${pad.top + h}" y2="${pad.top + h}" stroke="#333"/>`,
    `<text x="${pad.left + w / 2}" y="${height - 6}" text-anchor="middle">time since the first record (s)</text>`,
    `<text x="14" y="${pad.top + h / 2}" text-anchor="middle" transform="rotate(-90 14 ${pad.top + h / 2})">per second</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points
        .map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`)
        .join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${escapeXml(s.color)}" stroke-width="1.5"/>`);
    }
    const ly = pad.top + 4 + i * 16;
    parts.push(
      `<line x1="${pad.left + w - 230}" x2="${pad.left + w - 210}" y1="${ly}" y2="${ly}" stroke="${escapeXml(s.color)}" stroke-width="2"/>`,
      `<text x="${pad.left + w - 205}" y="${ly + 4}">${escapeXml(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ v (a round top for an axis). */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
