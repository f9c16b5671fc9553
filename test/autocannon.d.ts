// autocannon ships no type declarations: the part of its API the serve tests and bench use.
declare module 'autocannon' {
  namespace autocannon {
    interface Histogram {
      readonly average: number;
      readonly p50: number;
      readonly p99: number;
      readonly max: number;
    }
    interface Result {
      readonly errors: number;
      readonly timeouts: number;
      readonly non2xx: number;
      readonly requests: Histogram & { readonly total: number };
      readonly latency: Histogram;
    }
    interface Options {
      readonly url: string;
      readonly method?: string;
      readonly body?: string;
      readonly headers?: Record<string, string>;
      readonly connections?: number;
      readonly duration?: number;
      readonly amount?: number;
      readonly pipelining?: number;
    }
    interface Instance {
      on(event: 'done', listener: (result: Result) => void): void;
      stop(): void;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  export default autocannon;
}
