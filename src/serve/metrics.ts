/**
 * `/monitoring/prometheus/metrics` with TF Serving's metric names (tensorflow_serving/servables/
 * tensorflow/util.cc, named for Prometheus as util/prometheus_exporter.cc does: `/` becomes `:`)
 * plus a `version` label, so a dashboard built for TF Serving reads this server too:
 *   :tensorflow:serving:request_count{model_name,version,status}    counter
 *   :tensorflow:serving:request_latency{model_name,version,API,entrypoint}  histogram, microseconds,
 *     buckets 10 * 1.8^k for k = 0..32 (TF Serving's Buckets::Exponential(10, 1.8, 33))
 * The exposition text is written here rather than with prom-client (not a dependency of the
 * project) because two metric families need no more than this.
 */

const BUCKETS: readonly number[] = Array.from({ length: 33 }, (_, k) => 10 * 1.8 ** k);

interface Histogram {
  readonly labels: string;
  readonly counts: number[];
  sum: number;
  count: number;
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export class Metrics {
  private readonly counts = new Map<string, number>();
  private readonly latencies = new Map<string, Histogram>();

  /** One finished request: its model and version ('' when none was resolved) and its status code name. */
  request(model: string, version: string, status: string): void {
    const key = `model_name="${label(model)}",version="${label(version)}",status="${label(status)}"`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Latency of one successful request, as TF Serving records it (RecordRequestLatency). */
  latency(model: string, version: string, api: string, micros: number): void {
    const key = `model_name="${label(model)}",version="${label(version)}",API="${label(api)}",entrypoint="REST"`;
    let h = this.latencies.get(key);
    if (!h) {
      h = { labels: key, counts: new Array<number>(BUCKETS.length).fill(0), sum: 0, count: 0 };
      this.latencies.set(key, h);
    }
    let k = 0;
    while (k < BUCKETS.length && micros > BUCKETS[k]!) k++;
    if (k < BUCKETS.length) h.counts[k]!++;
    h.sum += micros;
    h.count++;
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    lines.push('# TYPE :tensorflow:serving:request_count counter');
    for (const [key, n] of [...this.counts].sort()) lines.push(`:tensorflow:serving:request_count{${key}} ${n}`);
    lines.push('# TYPE :tensorflow:serving:request_latency histogram');
    for (const h of [...this.latencies.values()].sort((a, b) => (a.labels < b.labels ? -1 : 1))) {
      let cumulative = 0;
      BUCKETS.forEach((b, k) => {
        cumulative += h.counts[k]!;
        lines.push(`:tensorflow:serving:request_latency_bucket{${h.labels},le="${Number(b.toPrecision(6))}"} ${cumulative}`);
      });
      lines.push(`:tensorflow:serving:request_latency_bucket{${h.labels},le="+Inf"} ${h.count}`);
      lines.push(`:tensorflow:serving:request_latency_sum{${h.labels}} ${h.sum}`);
      lines.push(`:tensorflow:serving:request_latency_count{${h.labels}} ${h.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
