/**
 * What `isogate import` could not carry over from a Kong file. Each entry names where in
 * the Kong file it is (Kong's own field names) and what happened to it, so that an
 * operator can finish the move by hand.
 */
export type ReportEntry = {
  /** Where in the Kong file, e.g. `services[0].routes[1].paths[0]` or `services[api]`. */
  readonly at: string;
  /** `skipped`: the entity was left out; `dropped`: a field of it was; `changed`: mapped differently. */
  readonly action: 'skipped' | 'dropped' | 'changed';
  readonly why: string;
};

export class Report {
  readonly entries: ReportEntry[] = [];
  skipped(at: string, why: string): void {
    this.entries.push({ at, action: 'skipped', why });
  }
  dropped(at: string, why: string): void {
    this.entries.push({ at, action: 'dropped', why });
  }
  changed(at: string, why: string): void {
    this.entries.push({ at, action: 'changed', why });
  }
  /** One line per entry, for a terminal. */
  format(): string {
    return this.entries.map((e) => `  ${e.action.padEnd(7)} ${e.at}: ${e.why}`).join('\n');
  }
}

/** Kong's names allow characters ours do not (`~`, spaces in tags...): a name we can use, or null. */
export function usableName(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return null;
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return cleaned === '' ? null : cleaned;
}

export type KongRecord = Record<string, unknown>;

export function isRecord(v: unknown): v is KongRecord {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A Kong list field: an array of records (anything else is reported and ignored). */
export function records(v: unknown, at: string, report: Report): KongRecord[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    report.skipped(at, 'expected a list');
    return [];
  }
  const out: KongRecord[] = [];
  v.forEach((item, i) => {
    if (isRecord(item)) out.push(item);
    else report.skipped(`${at}[${i}]`, 'expected an object');
  });
  return out;
}
