/**
 * Terminal progress: which scenario, which round, elapsed/remaining, live requests/s (from
 * the upstream's request counter). A status line redrawn in place on a TTY; one line per
 * finished measurement otherwise.
 */
export class Progress {
  #out: NodeJS.WriteStream;
  #tty: boolean;
  #t0 = Date.now();
  #units = 0;
  #done = 0;
  #est = 0;
  #label = '';
  #round = 0;
  #rounds = 0;
  #count = -1;
  #samples: { t: number; n: number }[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    if (this.#tty) {
      this.#timer = setInterval(() => this.#draw(), 500);
      this.#timer.unref();
    }
  }

  plan(units: number, estSeconds: number): void {
    this.#units = units;
    this.#est = estSeconds;
  }

  note(text: string): void {
    this.#clear();
    this.#out.write(`${text}\n`);
  }

  begin(label: string, round: number, rounds: number): void {
    this.#label = label;
    this.#round = round;
    this.#rounds = rounds;
    this.#draw();
  }

  measuring(): void {
    this.#draw();
  }

  /** The upstream's total request count. */
  count(n: number): void {
    this.#count = n;
    const now = Date.now();
    this.#samples.push({ t: now, n });
    while (this.#samples.length > 2 && now - this.#samples[0].t > 1600) this.#samples.shift();
  }

  #rate(): number {
    const s = this.#samples;
    if (s.length < 2 || Date.now() - s[s.length - 1].t > 1200) return 0;
    const a = s[0];
    const b = s[s.length - 1];
    return b.t > a.t ? ((b.n - a.n) * 1000) / (b.t - a.t) : 0;
  }

  done(line: string): void {
    this.#done++;
    this.#clear();
    this.#out.write(`  ${clock((Date.now() - this.#t0) / 1000)}  ${line}\n`);
    this.#draw();
  }

  #remaining(): number {
    const elapsed = (Date.now() - this.#t0) / 1000;
    if (this.#done === 0) return Math.max(0, this.#est - elapsed);
    return (elapsed / this.#done) * (this.#units - this.#done);
  }

  #clear(): void {
    if (this.#tty) this.#out.write('\r\x1b[K');
  }

  #draw(): void {
    if (!this.#tty || this.#label === '') return;
    const elapsed = (Date.now() - this.#t0) / 1000;
    const rate = this.#rate();
    const line = `[${Math.min(this.#done + 1, this.#units)}/${this.#units}] round ${this.#round + 1}/${this.#rounds}  ${this.#label}` +
      `  elapsed ${clock(elapsed)}  remaining ~${clock(this.#remaining())}  live ${Math.round(rate).toLocaleString('en-US')} req/s`;
    this.#out.write(`\r\x1b[K${line.slice(0, (this.#out.columns ?? 120) - 1)}`);
  }

  finish(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#clear();
  }
}

function clock(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}
