//! `collar bench` through the real binary, at the small shape without proving: it measures all
//! three circuits in one run and writes the table, the JSON and the plot.

use std::process::{Command, Output};

/// `collar bench --small --no-prove --capacities CAPACITIES --out DIR`.
fn bench(capacities: &str, dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collar"))
        .args(["bench", "--small", "--no-prove", "--capacities", capacities])
        .arg("--out")
        .arg(dir)
        .output()
        .expect("collar bench runs")
}

#[test]
fn bench_writes_a_report_comparing_the_three_circuits() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench("1,2", dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bench.json")).unwrap()).unwrap();
    let points = report["points"].as_array().unwrap();
    assert_eq!(
        points.len(),
        12,
        "two capacities × two flows × three hashings"
    );
    for (cap, flow) in [1, 2]
        .into_iter()
        .flat_map(|c| [(c, "spread"), (c, "market-maker")])
    {
        let cells = |hashing: &str| {
            points
                .iter()
                .find(|p| p["capacity"] == cap && p["flow"] == flow && p["hashing"] == hashing)
                .and_then(|p| p["cells_per_trade"].as_f64())
                .unwrap_or_else(|| panic!("capacity {cap}, {flow}, {hashing} measured"))
        };
        let (old, pow5, msm) = (cells("halo2-base"), cells("pow5"), cells("pow5-msm"));
        assert!(
            msm > 0.0 && msm < pow5 && pow5 < old,
            "capacity {cap}: {msm} and {pow5} vs {old}"
        );
        assert!(
            points
                .iter()
                .all(|p| p["trades_per_second"].is_null() && p["stats"]["proving"].is_null()),
            "--no-prove proves nothing"
        );
    }

    let md = std::fs::read_to_string(dir.path().join("bench.md")).unwrap();
    assert!(
        md.contains("| 1 | spread | 3 | halo2-base |")
            && md.contains("| 2 | market-maker | 4 | pow5 |")
            && md.contains("| 2 | market-maker | 4 | pow5-msm |"),
        "{md}"
    );
    assert!(
        md.contains("fewer advice cells per trade") && md.contains("with the Pow5 and msm chips"),
        "{md}"
    );
    let svg = std::fs::read_to_string(dir.path().join("bench.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("capacity 2"),
        "{svg}"
    );
}

#[test]
fn bench_refuses_a_zero_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench("0", dir.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("capacity above 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
