//! A tiny run of the harness, twice: every webhook arrives with a valid signature, and
//! the report carries the figures the table and the JSON are made from.

use switchyard_bench::{Sizes, run, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_run_verifies_every_delivery() {
    let sizes = Sizes {
        events: 20,
        concurrency: 4,
        repeats: 2,
        ..Sizes::quick()
    };
    let host_exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard-bench"));
    let report = run(sizes, &["fanout-1".to_owned()], host_exe)
        .await
        .expect("the run completes");
    let names: Vec<&str> = report.runs.iter().map(|r| r.name.as_str()).collect();
    let group = [
        "baseline/1-receivers",
        "relay/1-receivers",
        "switchyard/1-receivers/json",
        "baseline/1-receivers/after",
    ];
    assert_eq!(names, [group, group].concat());
    for figures in &report.runs {
        assert_eq!(figures.events, 20, "{figures:?}");
        assert!(scenarios::is_complete(figures), "{figures:?}");
        assert!(figures.p99_ms.is_some(), "{figures:?}");
    }
    let (relay, host) = (&report.runs[1], &report.runs[2]);
    let baseline = (report.runs[0].delivered_per_s + report.runs[3].delivered_per_s) / 2.0;
    for run in [relay, host] {
        let ratio = run.ratio_to_baseline.expect("a ratio");
        assert!(ratio > 0.0, "{run:?}");
        assert!(
            (ratio - run.delivered_per_s / baseline).abs() < 1e-9,
            "against the mean of the baselines around it: {report:?}"
        );
    }
    let to_relay = host.ratio_to_relay.expect("a ratio to the relay");
    assert!(
        (to_relay - host.delivered_per_s / relay.delivered_per_s).abs() < 1e-9,
        "{report:?}"
    );
    assert_eq!(relay.ratio_to_relay, None, "{relay:?}");
    assert!(
        relay.extra.contains_key("host_cpu_us_per_event"),
        "the relay's CPU is measured like the host's: {relay:?}"
    );
    let hosts: Vec<f64> = [2, 6]
        .map(|i| report.runs[i].ratio_to_baseline.expect("a ratio"))
        .to_vec();
    let summed = &report.repeated;
    assert_eq!(summed.len(), 2, "the relay and the host: {summed:?}");
    assert_eq!(summed[1].name, "switchyard/1-receivers/json");
    assert_eq!(summed[1].runs, 2);
    assert!(
        (summed[1].ratio.median - (hosts[0] + hosts[1]) / 2.0).abs() < 1e-9,
        "the median of two is their mean: {summed:?}"
    );
    let table = switchyard_bench::table(&report);
    assert!(table.contains("switchyard/1-receivers/json"), "{table}");
    assert!(table.contains("repeated run"), "{table}");
}
