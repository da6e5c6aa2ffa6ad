//! `collar bench`: proving cost per trade, the generic halo2-base path (its Poseidon, Schnorr
//! on its basic gate) beside the dedicated chips (`pow5`: Pow5 Poseidon; `pow5-msm`: also the
//! `msm` Schnorr chip), for several batch capacities, measured in one run. Writes a Markdown report, the raw JSON and an
//! SVG plot to a folder.
//!
//! Each (capacity, flow, hashing) point runs in its own `collar stats --json-out` child process,
//! so its peak memory (`VmHWM`) is its own and one point's allocations do not skew the next.
//!
//! Two flows: `spread`, where every trade is between two accounts of its own (the circuit's
//! default account table, which every batch fits), and `market-maker`, where one market maker
//! is a party to every trade (an account table of `capacity + 2` entries, which that flow fits).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use collar_circuits::poseidon::Hashing;
use collar_circuits::stats::CircuitStats;
use serde::Serialize;

/// Arguments of `collar bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Batch capacities (slots per proof) to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub capacities: Vec<usize>,
    /// Measure the small test shape (depth 8, 4 positions) instead of production (depth 24,
    /// 16 positions, 64 series).
    #[arg(long)]
    pub small: bool,
    /// Cells and layout only: skip keygen, proving and verification (fast).
    #[arg(long)]
    pub no_prove: bool,
    /// Only this hashing (default: all three, baseline first).
    #[arg(long)]
    pub hashing: Option<Hashing>,
    /// Flows to measure, comma-separated: `spread` (trades over many accounts) and
    /// `market-maker` (one market maker in every trade, with the account table that flow fits).
    #[arg(long, value_delimiter = ',', default_value = "spread,market-maker")]
    pub flows: Vec<Flow>,
    /// Folder for `bench.md`, `bench.json` and `bench.svg` (created if missing).
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Who trades with whom in the measured batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// Every trade between two accounts of its own; the default account table.
    Spread,
    /// One market maker in every trade against a taker of its own; an account table of
    /// `capacity + 2` entries.
    MarketMaker,
}

impl Flow {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Spread => "spread",
            Flow::MarketMaker => "market-maker",
        }
    }

    /// The `collar stats` arguments of this flow at `capacity`.
    fn stats_args(self, capacity: usize) -> Vec<String> {
        match self {
            Flow::Spread => vec!["--fill".into(), "trades".into()],
            Flow::MarketMaker => vec![
                "--fill".into(),
                "market-maker".into(),
                "--accounts".into(),
                (capacity + 2).to_string(),
            ],
        }
    }
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One measured point.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// Slots per proof.
    pub capacity: usize,
    /// The flow measured.
    pub flow: Flow,
    /// The hashing measured.
    pub hashing: Hashing,
    /// Advice cells of the whole circuit divided by its trades.
    pub cells_per_trade: f64,
    /// Trades proven per second (capacity / prove time), when proving ran.
    pub trades_per_second: Option<f64>,
    /// The same per core of this machine.
    pub trades_per_second_per_core: Option<f64>,
    /// Everything `collar stats` measured.
    pub stats: CircuitStats,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `production` or `small`.
    pub shape: String,
    /// Cores available to the prover.
    pub cores: usize,
    /// Whether keygen, proving and verification ran.
    pub proved: bool,
    /// Seconds the whole bench took.
    pub wall_seconds: f64,
    /// Every point, by capacity then hashing.
    pub points: Vec<Point>,
}

/// Runs `collar bench`.
pub fn run(a: Args) -> anyhow::Result<()> {
    super::init_tracing("warn");
    anyhow::ensure!(
        !a.capacities.is_empty() && a.capacities.iter().all(|c| *c > 0),
        "--capacities needs at least one capacity above 0"
    );
    anyhow::ensure!(!a.flows.is_empty(), "--flows needs at least one flow");
    let hashings: Vec<Hashing> = match a.hashing {
        Some(h) => vec![h],
        None => Hashing::ALL.to_vec(),
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let exe = std::env::current_exe().context("locating the collar binary")?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let total = a.capacities.len() * a.flows.len() * hashings.len();
    let bar = super::progress_bar(total as u64, "measuring");
    let mut points = Vec::with_capacity(total);
    for &capacity in &a.capacities {
        for &flow in &a.flows {
            for &hashing in &hashings {
                bar.set_message(format!("capacity {capacity}, {flow}, {hashing}"));
                tracing::info!(capacity, %flow, %hashing, "measuring");
                let stats = measure(&exe, &a, capacity, flow, hashing)?;
                let trades = stats.batch.trades.max(1) as f64;
                let tps = stats.proving.as_ref().map(|p| trades / (p.prove_ms / 1e3));
                points.push(Point {
                    capacity,
                    flow,
                    hashing,
                    cells_per_trade: stats.advice_cells as f64 / trades,
                    trades_per_second: tps,
                    trades_per_second_per_core: tps.map(|t| t / cores as f64),
                    stats,
                });
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let report = Report {
        shape: if a.small { "small" } else { "production" }.into(),
        cores,
        proved: !a.no_prove,
        wall_seconds: start.elapsed().as_secs_f64(),
        points,
    };
    let json = serde_json::to_string_pretty(&report)?;
    let md = markdown(&report);
    write(&a.out.join("bench.json"), &json)?;
    write(&a.out.join("bench.md"), &md)?;
    write(&a.out.join("bench.svg"), &svg(&report))?;
    if a.json {
        println!("{json}");
    } else {
        println!("{md}");
        println!("written to {}/bench.{{md,json,svg}}", a.out.display());
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// One point, in a child `collar stats` process.
fn measure(
    exe: &Path,
    a: &Args,
    capacity: usize,
    flow: Flow,
    hashing: Hashing,
) -> anyhow::Result<CircuitStats> {
    let out = tempfile::NamedTempFile::new()?;
    let mut cmd = Command::new(exe);
    cmd.arg("stats")
        .args(["--capacity", &capacity.to_string()])
        .args(["--hashing", hashing.name()])
        .args(flow.stats_args(capacity))
        .arg("--json-out")
        .arg(out.path())
        .stdout(std::process::Stdio::null());
    if !a.small {
        cmd.args(["--production", "--depth", "24", "--positions", "16"]);
    }
    if !a.no_prove {
        cmd.arg("--prove");
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {}", exe.display()))?;
    anyhow::ensure!(
        status.success(),
        "collar stats failed for capacity {capacity}, {flow}, {hashing}: {status}"
    );
    let text = std::fs::read_to_string(out.path())?;
    serde_json::from_str(&text).context("reading collar stats' JSON")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn mib(b: Option<u64>) -> String {
    b.map_or("–".into(), |b| format!("{:.0}", b as f64 / 1_048_576.0))
}

/// Thousands separators for a count.
fn count(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The Markdown report: the table, then the baseline-over-Pow5 ratios per capacity.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Shape: {} (all-trade batches; flows: `spread`, every trade between two accounts of \
         its own, default account table; `market-maker`, one market maker in every trade, an \
         account table of capacity + 2); {} cores; {}. INSECURE development SRS.\n",
        r.shape,
        r.cores,
        if r.proved {
            "keygen, prove and verify ran once per point"
        } else {
            "cells only (no proving)"
        }
    );
    let _ = writeln!(
        s,
        "| capacity | flow | account table | hashing | k | advice columns (Pow5) | advice cells per trade | keygen s | prove s | trades/s | trades/s/core | peak MiB | proof bytes |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for p in &r.points {
        let st = &p.stats;
        let pr = st.proving.as_ref();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |",
            p.capacity,
            p.flow,
            st.shape.table_size(),
            p.hashing,
            st.k,
            st.advice_columns,
            st.chip_advice_columns,
            count(p.cells_per_trade),
            opt(pr.map(|p| p.keygen_ms / 1e3), 1),
            opt(pr.map(|p| p.prove_ms / 1e3), 1),
            opt(p.trades_per_second, 4),
            opt(p.trades_per_second_per_core, 4),
            mib(pr
                .and_then(|p| p.peak_memory_bytes)
                .or(st.peak_memory_bytes)),
            pr.map_or("–".into(), |p| p.proof_bytes.to_string()),
        );
    }
    let _ = writeln!(s);
    for (cap, flow) in groups(r) {
        let get = |h| {
            r.points
                .iter()
                .find(|p| p.capacity == cap && p.flow == flow && p.hashing == h)
        };
        let Some(old) = get(Hashing::HaloBase) else {
            continue;
        };
        for (h, what) in [
            (Hashing::Pow5, "the Pow5 chip"),
            (Hashing::Pow5Msm, "the Pow5 and msm chips"),
        ] {
            let Some(new) = get(h) else { continue };
            let _ = write!(
                s,
                "- capacity {cap}, {flow}: {:.1}× fewer advice cells per trade",
                old.cells_per_trade / new.cells_per_trade
            );
            if let (Some(a), Some(b)) = (old.trades_per_second, new.trades_per_second) {
                let _ = write!(s, ", {:.1}× the trades proven per second", b / a);
            }
            let _ = writeln!(s, " with {what}.");
        }
    }
    s
}

/// The (capacity, flow) groups of the report, in measuring order.
fn groups(r: &Report) -> Vec<(usize, Flow)> {
    let mut c: Vec<(usize, Flow)> = r.points.iter().map(|p| (p.capacity, p.flow)).collect();
    c.dedup();
    c
}

/// The (flow, hashing) bar series of the report, in measuring order.
fn series(r: &Report) -> Vec<(Flow, Hashing)> {
    let mut out: Vec<(Flow, Hashing)> = Vec::new();
    for p in &r.points {
        if !out.contains(&(p.flow, p.hashing)) {
            out.push((p.flow, p.hashing));
        }
    }
    out
}

/// A plot's title and the value it shows of a point.
type Panel = (&'static str, fn(&Point) -> Option<f64>);

/// A grouped bar chart: advice cells per trade (left) and, when proving ran, trades proven per
/// second (right), per capacity, one bar per (flow, hashing), baseline beside the chips. Plain
/// SVG, no dependencies.
pub fn svg(r: &Report) -> String {
    let mut caps: Vec<usize> = r.points.iter().map(|p| p.capacity).collect();
    caps.dedup();
    let bars = series(r);
    let mut panels: Vec<Panel> = vec![("advice cells per trade", |p| Some(p.cells_per_trade))];
    if r.proved {
        panels.push(("trades proven per second", |p| p.trades_per_second));
    }
    let (pw, ph, m) = (600.0, 300.0, 50.0);
    let width = pw * panels.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n",
        ph + 40.0
    );
    let colour = |(f, h): (Flow, Hashing)| match (f, h) {
        (Flow::Spread, Hashing::HaloBase) => "#c0504d",
        (Flow::Spread, Hashing::Pow5) => "#4f81bd",
        (Flow::MarketMaker, Hashing::HaloBase) => "#e6a19f",
        (Flow::MarketMaker, Hashing::Pow5) => "#a7c0de",
        (Flow::Spread, Hashing::Pow5Msm) => "#4e9a4b",
        (Flow::MarketMaker, Hashing::Pow5Msm) => "#a3d39f",
    };
    for (i, (title, value)) in panels.iter().enumerate() {
        let x0 = i as f64 * pw;
        let max = r
            .points
            .iter()
            .filter_map(value)
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">{title} ({})</text>",
            x0 + pw / 2.0,
            r.shape
        );
        let (top, bottom) = (35.0, ph - 10.0);
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"black\"/>",
            x0 + m,
            x0 + pw - 10.0
        );
        let group = (pw - m - 10.0) / caps.len().max(1) as f64;
        let bar = group / (bars.len() as f64 + 1.0);
        for (g, cap) in caps.iter().enumerate() {
            let gx = x0 + m + g as f64 * group;
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">capacity {cap}</text>",
                gx + group / 2.0,
                bottom + 15.0
            );
            for (j, (f, h)) in bars.iter().enumerate() {
                let Some(v) = r
                    .points
                    .iter()
                    .find(|p| p.capacity == *cap && p.flow == *f && p.hashing == *h)
                    .and_then(value)
                else {
                    continue;
                };
                let height = (bottom - top) * v / max;
                let bx = gx + bar * (0.5 + j as f64);
                let _ = writeln!(
                    s,
                    "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\" \
                     fill=\"{}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                     font-size=\"10\">{}</text>",
                    bottom - height,
                    bar * 0.9,
                    colour((*f, *h)),
                    bx + bar * 0.45,
                    bottom - height - 3.0,
                    if v >= 100.0 {
                        count(v)
                    } else {
                        format!("{v:.4}")
                    }
                );
            }
        }
    }
    for (j, (f, h)) in bars.iter().enumerate() {
        let x = 60.0 + j as f64 * 200.0;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" \
             y=\"{}\">{h}, {f}</text>",
            ph + 15.0,
            colour((*f, *h)),
            x + 16.0,
            ph + 26.0
        );
    }
    s.push_str("</svg>\n");
    s
}
