//! Figures, medians, ratios and targets; the JSON file, the console table
//! and the SVG chart are all made from the same [`Report`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ingest_bench::human_size;
use crate::loadgen::Outcome;
use crate::nats_server::Sync;
use crate::processor_bench::kib_to_mib;

/// One HTTP measurement (or the median of several).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct HttpFigures {
    /// 200 answers per second.
    pub(crate) throughput: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    /// Non-200 answers and broken connections.
    pub(crate) errors: u64,
    /// Peak resident memory of the server process during the run.
    pub(crate) rss_peak_mib: f64,
    /// CPU time of the server process per 200 answer (warm-up included
    /// in neither), µs: the figure least disturbed by a busy machine.
    pub(crate) cpu_us_per_request: f64,
}

#[allow(clippy::cast_precision_loss)]
impl HttpFigures {
    pub(crate) fn from_outcome(outcome: &Outcome, rss_kib: u64, cpu_ticks: u64) -> Self {
        let ms = |q: f64| outcome.latency.value_at_quantile(q) as f64 / 1000.0;
        Self {
            throughput: outcome.ok as f64 / outcome.window.as_secs_f64(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            errors: outcome.errors,
            rss_peak_mib: kib_to_mib(rss_kib),
            cpu_us_per_request: if outcome.ok > 0 {
                cpu_ticks as f64 * 10_000.0 / outcome.ok as f64
            } else {
                0.0
            },
        }
    }
}

/// Baseline and ingest measured back to back in one round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct RoundPair {
    pub(crate) baseline: HttpFigures,
    pub(crate) ingest: HttpFigures,
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// Per-field medians (the peak RSS is the maximum, errors the sum).
pub(crate) fn median_http(runs: &[&HttpFigures]) -> HttpFigures {
    let field = |f: fn(&HttpFigures) -> f64| median(runs.iter().map(|r| f(r)).collect());
    HttpFigures {
        throughput: field(|r| r.throughput),
        p50_ms: field(|r| r.p50_ms),
        p99_ms: field(|r| r.p99_ms),
        p999_ms: field(|r| r.p999_ms),
        errors: runs.iter().map(|r| r.errors).sum(),
        rss_peak_mib: runs.iter().map(|r| r.rss_peak_mib).fold(0.0, f64::max),
        cpu_us_per_request: field(|r| r.cpu_us_per_request),
    }
}

/// One ingest setting: medians of the rounds and their ratios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IngestSetting {
    pub(crate) sync: Sync,
    pub(crate) connections: usize,
    pub(crate) body_bytes: usize,
    pub(crate) baseline: HttpFigures,
    pub(crate) ingest: HttpFigures,
    /// ingest / baseline throughput: the median of each round's ratio (the
    /// two runs of a round are back to back, so a machine that slows down
    /// or speeds up between rounds moves both alike).
    pub(crate) throughput_ratio: f64,
    /// ingest / baseline p99 latency, paired by round like the throughput.
    pub(crate) p99_ratio: f64,
    pub(crate) rounds: Vec<RoundPair>,
}

impl IngestSetting {
    pub(crate) fn new(
        sync: Sync,
        connections: usize,
        body_bytes: usize,
        baseline: HttpFigures,
        ingest: HttpFigures,
        rounds: Vec<RoundPair>,
    ) -> Self {
        Self {
            sync,
            connections,
            body_bytes,
            throughput_ratio: paired(&rounds, |p| {
                ratio(p.ingest.throughput, p.baseline.throughput)
            })
            .unwrap_or_else(|| ratio(ingest.throughput, baseline.throughput)),
            p99_ratio: paired(&rounds, |p| ratio(p.ingest.p99_ms, p.baseline.p99_ms))
                .unwrap_or_else(|| ratio(ingest.p99_ms, baseline.p99_ms)),
            baseline,
            ingest,
            rounds,
        }
    }

    fn label(&self) -> String {
        format!(
            "{} · {} conns · {}",
            self.sync.label(),
            self.connections,
            human_size(self.body_bytes)
        )
    }
}

/// The median of a per-round ratio; `None` without rounds (an old report).
fn paired(rounds: &[RoundPair], ratio_of: impl Fn(&RoundPair) -> f64) -> Option<f64> {
    (!rounds.is_empty()).then(|| median(rounds.iter().map(ratio_of).collect()))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// The drainers compared in the processor part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProcessorKind {
    /// Pull + explicit ack, no work (the baseline).
    Raw,
    /// One `hookline-processor`, file handler, idempotency on.
    One,
    /// Three of them in one group.
    Three,
}

impl ProcessorKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::One => "processor-1",
            Self::Three => "processor-3",
        }
    }

    pub(crate) fn instances(self) -> usize {
        match self {
            Self::Raw | Self::One => 1,
            Self::Three => 3,
        }
    }
}

/// One drain of the backlog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessorRun {
    /// Webhooks handled (acked) per second.
    pub(crate) rate: f64,
    pub(crate) seconds: f64,
    /// Peak summed RSS of the instances.
    pub(crate) rss_peak_mib: f64,
    /// CPU of the instances per message (start-up included), µs.
    pub(crate) cpu_us_per_message: f64,
    /// CPU of nats-server per message during the drain, µs.
    pub(crate) nats_server_cpu_us_per_message: f64,
    /// Cores the whole machine kept busy during the drain (of
    /// [`Machine::cores`]): near all of them means the run was CPU-bound.
    #[serde(default)]
    pub(crate) machine_busy_cores: f64,
}

/// The median of one kind's runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessorFigures {
    pub(crate) kind: ProcessorKind,
    pub(crate) instances: usize,
    pub(crate) rate: f64,
    pub(crate) rss_peak_mib: f64,
    pub(crate) cpu_us_per_message: f64,
    pub(crate) nats_server_cpu_us_per_message: f64,
    #[serde(default)]
    pub(crate) machine_busy_cores: f64,
    pub(crate) runs: Vec<ProcessorRun>,
}

/// The processor part for one sync mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessorSetting {
    pub(crate) sync: Sync,
    pub(crate) backlog: usize,
    pub(crate) kinds: Vec<ProcessorFigures>,
    /// One processor / raw consume.
    pub(crate) one_vs_raw: f64,
    /// Three processors / one.
    pub(crate) three_vs_one: f64,
}

impl ProcessorSetting {
    pub(crate) fn new(
        sync: Sync,
        backlog: usize,
        kinds: &[ProcessorKind],
        runs: Vec<Vec<ProcessorRun>>,
    ) -> Self {
        let kinds: Vec<ProcessorFigures> = kinds
            .iter()
            .zip(runs)
            .map(|(&kind, runs)| ProcessorFigures {
                kind,
                instances: kind.instances(),
                rate: median(runs.iter().map(|r| r.rate).collect()),
                rss_peak_mib: runs.iter().map(|r| r.rss_peak_mib).fold(0.0, f64::max),
                cpu_us_per_message: median(runs.iter().map(|r| r.cpu_us_per_message).collect()),
                nats_server_cpu_us_per_message: median(
                    runs.iter()
                        .map(|r| r.nats_server_cpu_us_per_message)
                        .collect(),
                ),
                machine_busy_cores: median(runs.iter().map(|r| r.machine_busy_cores).collect()),
                runs,
            })
            .collect();
        // Ratios of runs from the same round (close in time), then their median.
        let rates = |k: ProcessorKind| {
            kinds
                .iter()
                .find(|f| f.kind == k)
                .map(|f| f.runs.iter().map(|r| r.rate).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let per_round = |a: ProcessorKind, b: ProcessorKind| {
            let ratios: Vec<f64> = rates(a)
                .iter()
                .zip(rates(b))
                .map(|(x, y)| ratio(*x, y))
                .collect();
            median(ratios)
        };
        Self {
            sync,
            backlog,
            one_vs_raw: per_round(ProcessorKind::One, ProcessorKind::Raw),
            three_vs_one: per_round(ProcessorKind::Three, ProcessorKind::One),
            kinds,
        }
    }
}

/// One target of issue 6, judged on this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) value: f64,
    /// `>= limit` or `<= limit`.
    pub(crate) rule: String,
    pub(crate) holds: bool,
}

/// Where and how the run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    /// `--worker-threads`: the runtime shape of the binaries and baselines.
    #[serde(default = "one")]
    pub(crate) worker_threads: usize,
    /// `--processor-concurrency` (absent from runs made before it had a default).
    #[serde(default)]
    pub(crate) processor_concurrency: Option<usize>,
    /// `/proc/loadavg` before the run.
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) nats_server: String,
}

fn one() -> usize {
    1
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) command: String,
    /// Seconds since the Unix epoch.
    pub(crate) finished_at: u64,
    pub(crate) machine: Machine,
    pub(crate) rounds: usize,
    pub(crate) seconds_per_run: f64,
    pub(crate) ingest: Vec<IngestSetting>,
    pub(crate) processor: Vec<ProcessorSetting>,
    pub(crate) targets: Vec<Target>,
}

impl Report {
    /// Judges issue 6's targets on the default-sync figures.
    pub(crate) fn judge(&mut self) {
        let mut targets = Vec::new();
        for s in self.ingest.iter().filter(|s| s.sync == Sync::Default) {
            if s.body_bytes <= 16 * 1024 {
                targets.push(at_least(
                    format!("ingest throughput / baseline, {}", s.label()),
                    s.throughput_ratio,
                    0.90,
                ));
                targets.push(at_most(
                    format!("ingest p99 / baseline, {}", s.label()),
                    s.p99_ratio,
                    1.2,
                ));
            }
            if s.connections >= 256 && s.body_bytes >= 256 * 1024 {
                targets.push(at_most(
                    format!("ingest peak RSS MiB, {}", s.label()),
                    s.ingest.rss_peak_mib,
                    64.0,
                ));
            }
        }
        for p in self.processor.iter().filter(|p| p.sync == Sync::Default) {
            targets.push(at_least(
                "processor (1 instance, idempotency) / raw consume".to_owned(),
                p.one_vs_raw,
                0.25,
            ));
            targets.push(at_least(
                "processor 3 instances / 1 instance".to_owned(),
                p.three_vs_one,
                2.0,
            ));
        }
        self.targets = targets;
    }

    /// The console table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\ningest vs bare baseline (medians of {} rounds of {:.1} s, alternating; ratios are medians of each round's ratio)",
            self.rounds, self.seconds_per_run
        );
        let _ = writeln!(
            out,
            "{:<7} {:>5} {:>7} | {:>9} {:>7} {:>7} {:>7} | {:>9} {:>7} {:>7} {:>7} {:>6} | {:>6} {:>6} {:>5}",
            "sync",
            "conns",
            "body",
            "base r/s",
            "p50",
            "p99",
            "p99.9",
            "ingest r/s",
            "p50",
            "p99",
            "p99.9",
            "RSS",
            "thr×",
            "p99×",
            "err"
        );
        for s in &self.ingest {
            let (b, i) = (&s.baseline, &s.ingest);
            let _ = writeln!(
                out,
                "{:<7} {:>5} {:>7} | {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>6.0} | {:>10.0} {:>7.2} {:>7.2} {:>7.2} {:>6.0} {:>6.1} | {:>6.2} {:>6.2} {:>5}",
                s.sync.label(),
                s.connections,
                human_size(s.body_bytes),
                b.throughput,
                b.p50_ms,
                b.p99_ms,
                b.p999_ms,
                b.cpu_us_per_request,
                i.throughput,
                i.p50_ms,
                i.p99_ms,
                i.p999_ms,
                i.cpu_us_per_request,
                i.rss_peak_mib,
                s.throughput_ratio,
                s.p99_ratio,
                b.errors + i.errors,
            );
        }
        let _ = writeln!(
            out,
            "\nprocessors draining a backlog of 1 KiB webhooks (medians)"
        );
        let _ = writeln!(
            out,
            "{:<7} {:>7} | {:>9} {:>13} {:>13} | {:>9} {:>9} | {:>8}",
            "sync",
            "backlog",
            "raw msg/s",
            "1 proc msg/s",
            "3 proc msg/s",
            "1p/raw",
            "3p/1p",
            "RSS 1p"
        );
        for p in &self.processor {
            let rate = |k| p.kinds.iter().find(|f| f.kind == k).map_or(0.0, |f| f.rate);
            let rss = p
                .kinds
                .iter()
                .find(|f| f.kind == ProcessorKind::One)
                .map_or(0.0, |f| f.rss_peak_mib);
            let _ = writeln!(
                out,
                "{:<7} {:>7} | {:>9.0} {:>13.0} {:>13.0} | {:>9.2} {:>9.2} | {:>8.1}",
                p.sync.label(),
                p.backlog,
                rate(ProcessorKind::Raw),
                rate(ProcessorKind::One),
                rate(ProcessorKind::Three),
                p.one_vs_raw,
                p.three_vs_one,
                rss,
            );
        }
        let _ = writeln!(
            out,
            "\nCPU per webhook while draining (µs; medians), and the machine's busy cores of {}",
            self.machine.cores
        );
        let _ = writeln!(
            out,
            "{:<7} {:<12} | {:>10} {:>12} {:>11}",
            "sync", "kind", "consumers", "nats-server", "busy cores"
        );
        for p in &self.processor {
            for f in &p.kinds {
                let _ = writeln!(
                    out,
                    "{:<7} {:<12} | {:>10.1} {:>12.1} {:>11.2}",
                    p.sync.label(),
                    f.kind.label(),
                    f.cpu_us_per_message,
                    f.nats_server_cpu_us_per_message,
                    f.machine_busy_cores,
                );
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets (default sync)");
            for t in &self.targets {
                let _ = writeln!(
                    out,
                    "  {:<4} {:<62} {:>8.2} {}",
                    if t.holds { "ok" } else { "MISS" },
                    t.name,
                    t.value,
                    t.rule
                );
            }
        }
        let _ = writeln!(
            out,
            "\nload before {} · after {} · {} cores · worker_threads {}{} · {}",
            self.machine.load_before,
            self.machine.load_after,
            self.machine.cores,
            self.machine.worker_threads,
            self.machine
                .processor_concurrency
                .map(|c| format!(" · processor concurrency {c}"))
                .unwrap_or_default(),
            self.machine.nats_server
        );
        out
    }

    /// A small hand-written SVG: throughput ratio bars per setting with
    /// the target lines.
    pub(crate) fn svg(&self) -> String {
        const WIDTH: f64 = 760.0;
        const LABEL: f64 = 250.0;
        const ROW: f64 = 22.0;
        const SCALE_MAX: f64 = 1.5;
        let bar_width = WIDTH - LABEL - 70.0;
        let x = |v: f64| LABEL + bar_width * v.clamp(0.0, SCALE_MAX) / SCALE_MAX;
        let mut rows: Vec<(String, f64, f64, &str)> = self
            .ingest
            .iter()
            .map(|s| {
                (
                    format!("ingest {}", s.label()),
                    s.throughput_ratio,
                    0.90,
                    if s.sync == Sync::Default {
                        "#3b7dd8"
                    } else {
                        "#8fb3e8"
                    },
                )
            })
            .collect();
        for p in &self.processor {
            rows.push((
                format!("processor {} · 1 inst / raw", p.sync.label()),
                p.one_vs_raw,
                0.25,
                if p.sync == Sync::Default {
                    "#2e9e6a"
                } else {
                    "#8fd1b1"
                },
            ));
        }
        let top = 48.0;
        #[allow(clippy::cast_precision_loss)]
        let height = top + ROW * rows.len() as f64 + 40.0;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            svg,
            r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="10" y="20" font-size="14" font-weight="bold">Hookline / bare baseline, throughput ratio (same run)</text>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="10" y="36" fill="#555">bars: median of the per-round ratios, {} alternating rounds; red ticks: targets (0.90 ingest, 0.25 processor)</text>"##,
            self.rounds
        );
        // Grid first, so that bars and labels are drawn over it.
        #[allow(clippy::cast_precision_loss)]
        let axis = top + ROW * rows.len() as f64 + 4.0;
        for tick in [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5] {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#ddd"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle" fill="#555">{tick}</text>"##,
                x(tick),
                top,
                axis,
                axis + 14.0
            );
        }
        for (i, (label, value, target, colour)) in rows.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let y = top + ROW * i as f64;
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LABEL - 8.0,
                y + 14.0,
                label
            );
            let _ = writeln!(
                svg,
                r#"<rect x="{LABEL}" y="{:.1}" width="{:.1}" height="16" fill="{colour}"/>"#,
                y + 2.0,
                x(*value) - LABEL
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#222">{value:.2}</text>"##,
                x(*value) + 4.0,
                y + 14.0
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#d62728" stroke-width="2"/>"##,
                x(*target),
                y,
                y + ROW
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn at_least(name: String, value: f64, limit: f64) -> Target {
    Target {
        name,
        value,
        rule: format!(">= {limit}"),
        holds: value >= limit,
    }
}

fn at_most(name: String, value: f64, limit: f64) -> Target {
    Target {
        name,
        value,
        rule: format!("<= {limit}"),
        holds: value <= limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        // A machine slowing down between rounds (the real run behind this
        // test): medians of each side say 1.05, the rounds say ~0.8.
        let figures = |throughput: f64, p99_ms: f64| HttpFigures {
            throughput,
            p50_ms: 1.0,
            p99_ms,
            p999_ms: 1.0,
            errors: 0,
            rss_peak_mib: 1.0,
            cpu_us_per_request: 1.0,
        };
        let rounds: Vec<RoundPair> = [
            (30_758.0, 24_113.0),
            (20_905.0, 22_050.0),
            (18_472.0, 15_096.0),
        ]
        .into_iter()
        .map(|(base, ingest)| RoundPair {
            baseline: figures(base, 10.0),
            ingest: figures(ingest, 12.0),
        })
        .collect();
        let baseline = median_http(&rounds.iter().map(|r| &r.baseline).collect::<Vec<_>>());
        let ingest = median_http(&rounds.iter().map(|r| &r.ingest).collect::<Vec<_>>());
        assert!(ingest.throughput / baseline.throughput > 1.0);
        let setting = IngestSetting::new(Sync::Default, 64, 1024, baseline, ingest, rounds);
        assert!((setting.throughput_ratio - 15_096.0 / 18_472.0).abs() < 1e-9);
        assert!((setting.p99_ratio - 1.2).abs() < 1e-9);
    }

    #[test]
    fn medians() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        assert!(median(Vec::new()).abs() < f64::EPSILON);
    }
}
