// Preloaded into a Node target (`node --import …/loop_probe.mjs`) with LOOP_PROBE_FILE set:
// every LOOP_PROBE_INTERVAL_MS (500) it appends one JSON line with what the event loop went
// through in that interval — the delay of a 10 ms timer (monitorEventLoopDelay: how long the
// loop was blocked), event-loop utilisation, and every GC pause (kind, duration). The harness
// cuts these lines by wall time into its measurement windows. A 10 ms resolution (not 1 ms)
// so that the probe itself does not keep an idle loop awake.
import { appendFileSync } from "node:fs";
import { constants, monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";

const file = process.env.LOOP_PROBE_FILE;
if (file) {
  const intervalMs = Number(process.env.LOOP_PROBE_INTERVAL_MS ?? 500);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const kinds = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: "minor", // a scavenge of the young generation
    [constants.NODE_PERFORMANCE_GC_MAJOR]: "major", // mark-compact
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
  };
  let gcs = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcs.push([kinds[e.detail?.kind] ?? String(e.detail?.kind), e.duration]);
    }
  }).observe({ entryTypes: ["gc"] });
  let elu = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const d = performance.eventLoopUtilization(now, elu);
    elu = now;
    const ms = (ns) => ns / 1e6;
    appendFileSync(
      file,
      `${JSON.stringify({
        t: Date.now() / 1000,
        elu: d.utilization,
        delay_p50_ms: ms(delay.percentile(50)),
        delay_p99_ms: ms(delay.percentile(99)),
        delay_max_ms: ms(delay.max),
        delay_n: delay.count,
        heap_mb: process.memoryUsage().heapUsed / 2 ** 20,
        gc: gcs,
      })}\n`,
    );
    delay.reset();
    gcs = [];
  }, intervalMs);
  timer.unref();
}
